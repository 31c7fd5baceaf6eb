# One Lambda per declared function, each with its own role whose policy grants exactly the
# DynamoDB actions the declaration lists for it, on exactly those tables.

locals {
  functions = var.declaration.functions

  function_env = {
    for name, spec in local.functions : name => merge(
      {
        for table, _actions in try(spec.tables, {}) :
        var.declaration.tables[table].env => aws_dynamodb_table.this[table].name
      },
      length(try(spec.bus, [])) > 0 ? { (var.declaration.bus.env) = aws_cloudwatch_event_bus.commerce.name } : {}
    )
  }

  # Queues a function consumes (its SQS mappings) and sends failure records to.
  consumed_queues = {
    for name, spec in local.functions : name => [for s in try(spec.event_sources, []) : s.queue if try(s.queue, null) != null]
  }
  failure_queues = {
    for name, spec in local.functions : name => distinct([for s in try(spec.event_sources, []) : s.on_failure_queue if try(s.on_failure_queue, null) != null])
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
      sid     = "Table${replace(title(statement.key), "-", "")}"
      actions = statement.value
      # Query and Scan may use the table's indexes.
      resources = anytrue([for a in statement.value : contains(["dynamodb:Query", "dynamodb:Scan"], a)]) ? [
        aws_dynamodb_table.this[statement.key].arn,
        "${aws_dynamodb_table.this[statement.key].arn}/index/*",
      ] : [aws_dynamodb_table.this[statement.key].arn]
    }
  }

  dynamic "statement" {
    for_each = length(try(each.value.streams, [])) > 0 ? [1] : []
    content {
      sid       = "ReadStreams"
      actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
      resources = [for t in each.value.streams : aws_dynamodb_table.this[t].stream_arn]
    }
  }

  dynamic "statement" {
    for_each = length(try(each.value.bus, [])) > 0 ? [1] : []
    content {
      sid       = "PublishToBus"
      actions   = each.value.bus
      resources = [aws_cloudwatch_event_bus.commerce.arn]
    }
  }

  dynamic "statement" {
    for_each = length(local.consumed_queues[each.key]) > 0 ? [1] : []
    content {
      sid       = "ConsumeQueues"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
      resources = [for q in local.consumed_queues[each.key] : aws_sqs_queue.this[q].arn]
    }
  }

  dynamic "statement" {
    for_each = length(local.failure_queues[each.key]) > 0 ? [1] : []
    content {
      sid       = "RecordFailures"
      actions   = ["sqs:SendMessage"]
      resources = [for q in local.failure_queues[each.key] : aws_sqs_queue.this[q].arn]
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
