# One Lambda per declared function, each with its own role whose policy grants exactly the
# DynamoDB actions the declaration lists for it, on exactly those tables.

locals {
  functions = var.declaration.functions

  function_env = {
    for name, spec in local.functions : name => {
      for table, _actions in try(spec.tables, {}) :
      var.declaration.tables[table].env => aws_dynamodb_table.this[table].name
    }
  }
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${var.name_prefix}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }

  dynamic "statement" {
    for_each = try(each.value.tables, {})
    content {
      sid       = "Table${replace(title(statement.key), "-", "")}"
      actions   = statement.value
      resources = [aws_dynamodb_table.this[statement.key].arn]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "least-privilege"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "this" {
  for_each = local.functions

  function_name    = "${var.name_prefix}-${each.key}"
  description      = each.value.description
  role             = aws_iam_role.function[each.key].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.lambda_architecture]
  filename         = "${var.lambda_artifacts_dir}/${each.key}/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.lambda_artifacts_dir}/${each.key}/bootstrap.zip")
  memory_size      = each.value.memory_mb
  timeout          = each.value.timeout_s

  environment {
    variables = merge(local.function_env[each.key], {
      AWS_LAMBDA_LOG_LEVEL = "info"
    })
  }

  logging_config {
    log_format = "Text" # the functions write their own JSON lines and EMF metrics
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_iam_role_policy.function]
}
