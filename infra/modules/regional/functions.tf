# One Lambda per declared function, each with its own role whose policy grants exactly the
# actions the declaration lists for it, on exactly those resources of this region: the
# DynamoDB actions per table (this region's replica), the table streams it reads, the bus,
# its queues, the Kinesis streams it writes or consumes, the state machines it drives.

locals {
  functions = var.declaration.functions

  function_env = {
    for name, spec in local.functions : name => merge(
      {
        for table, _actions in try(spec.tables, {}) :
        var.declaration.tables[table].env => var.tables[table].name
      },
      length(try(spec.bus, [])) > 0 ? { (var.declaration.bus.env) = aws_cloudwatch_event_bus.commerce.name } : {},
      {
        for stream in distinct(concat(try(spec.kinesis_put, []), [for s in try(spec.event_sources, []) : s.kinesis_stream if try(s.kinesis_stream, null) != null])) :
        local.streams[stream].env => aws_kinesis_stream.this[stream].name
        if try(local.streams[stream].env, null) != null
      },
      # A failure queue that names a variable is one the function writes to itself (the
      # fraud scorer parks the records it can never score there): its URL.
      {
        for q in compact([for s in try(spec.event_sources, []) : try(s.on_failure_queue, "")]) :
        var.declaration.queues[q].env => aws_sqs_queue.this[q].url
        if try(var.declaration.queues[q].env, null) != null
      },
      {
        for machine, _actions in try(spec.state_machines, {}) :
        local.state_machines[machine].env => local.state_machine_arns[machine]
        if try(local.state_machines[machine].env, null) != null
      },
      # A secret's name (the function reads its value at cold start) and the settings that
      # go with it (the payment provider's address).
      {
        for secret, _actions in try(spec.secrets, {}) :
        var.declaration.secrets[secret].env => aws_secretsmanager_secret.this[secret].name
      },
      merge([
        for secret, _actions in try(spec.secrets, {}) : {
          for setting, values in try(var.declaration.secrets[secret].settings, {}) : setting => values.aws
        }
      ]...),
    )
  }

  # Queues a function consumes (its SQS mappings) and sends failure records to; Kinesis
  # streams it consumes (its Kinesis mappings) and writes (spec.kinesis_put).
  consumed_queues = {
    for name, spec in local.functions : name => [for s in try(spec.event_sources, []) : s.queue if try(s.queue, null) != null]
  }
  failure_queues = {
    for name, spec in local.functions : name => distinct([for s in try(spec.event_sources, []) : s.on_failure_queue if try(s.on_failure_queue, null) != null])
  }
  consumed_kinesis = {
    for name, spec in local.functions : name => distinct([for s in try(spec.event_sources, []) : s.kinesis_stream if try(s.kinesis_stream, null) != null])
  }
  uses_regional_key = {
    for name, spec in local.functions : name => (
      length(local.consumed_queues[name]) + length(local.failure_queues[name]) + length(local.consumed_kinesis[name]) +
      length(try(spec.kinesis_put, [])) + length(try(spec.state_machines, {})) + length(try(spec.secrets, {}))
    ) > 0
  }
  uses_table_key = {
    for name, spec in local.functions : name => length(try(spec.tables, {})) + length(try(spec.streams, [])) > 0
  }

  # Answering a task token (the fraud scorer, an admin's decision): the Service Authorization
  # Reference lists no resource type for these actions, so IAM evaluates them against "*"
  # only, and a statement naming state machine or execution ARNs does not allow them. The
  # token itself is the capability: only the execution that handed it out accepts it.
  task_token_actions = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]
  machine_actions = {
    for name, spec in local.functions : name => {
      for machine, actions in try(spec.state_machines, {}) :
      machine => [for a in actions : a if !contains(local.task_token_actions, a)]
      if length([for a in actions : a if !contains(local.task_token_actions, a)]) > 0
    }
  }
  token_actions = {
    for name, spec in local.functions : name => distinct(flatten([
      for machine, actions in try(spec.state_machines, {}) : [for a in actions : a if contains(local.task_token_actions, a)]
    ]))
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

  name               = "${var.name_prefix}-${each.key}${local.iam_suffix}"
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
        var.tables[statement.key].arn,
        "${var.tables[statement.key].arn}/index/*",
      ] : [var.tables[statement.key].arn]
    }
  }

  dynamic "statement" {
    for_each = length(try(each.value.streams, [])) > 0 ? [1] : []
    content {
      sid       = "ReadStreams"
      actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
      resources = [for t in each.value.streams : var.tables[t].stream_arn]
    }
  }

  # The stream mapping also lists streams: ListStreams has no resource type, so IAM
  # evaluates it against "*" only.
  dynamic "statement" {
    for_each = length(try(each.value.streams, [])) > 0 ? [1] : []
    content {
      sid       = "ListStreams"
      actions   = ["dynamodb:ListStreams"]
      resources = ["*"]
    }
  }

  # The tables are encrypted with the customer-managed key; it may be used only through
  # DynamoDB (and its streams), for the calls above.
  dynamic "statement" {
    for_each = local.uses_table_key[each.key] ? [1] : []
    content {
      sid       = "TablesKeyThroughDynamoDb"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:DescribeKey"]
      resources = [var.table_key_arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["dynamodb.${var.region}.amazonaws.com", "streams.dynamodb.${var.region}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = length(try(each.value.bus, [])) > 0 ? [1] : []
    content {
      sid       = "Bus"
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

  dynamic "statement" {
    for_each = length(local.consumed_kinesis[each.key]) > 0 ? [1] : []
    content {
      sid = "ConsumeKinesisStreams"
      actions = [
        "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
        "kinesis:GetShardIterator", "kinesis:ListShards",
      ]
      resources = [for s in local.consumed_kinesis[each.key] : aws_kinesis_stream.this[s].arn]
    }
  }

  dynamic "statement" {
    for_each = length(try(each.value.kinesis_put, [])) > 0 ? [1] : []
    content {
      sid       = "PutToKinesisStreams"
      actions   = ["kinesis:PutRecord", "kinesis:PutRecords"]
      resources = [for s in each.value.kinesis_put : aws_kinesis_stream.this[s].arn]
    }
  }

  # The secrets it reads, each with the actions the declaration lists.
  dynamic "statement" {
    for_each = try(each.value.secrets, {})
    content {
      sid       = "Secret${replace(title(statement.key), "-", "")}"
      actions   = statement.value
      resources = [aws_secretsmanager_secret.this[statement.key].arn]
    }
  }

  # Queues, streams, state machines and secrets are encrypted with the regional key: used
  # only through SQS, Kinesis, Step Functions and Secrets Manager.
  dynamic "statement" {
    for_each = local.uses_regional_key[each.key] ? [1] : []
    content {
      sid       = "RegionalKeyThroughItsServices"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [aws_kms_key.regional.arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["sqs.${var.region}.amazonaws.com", "kinesis.${var.region}.amazonaws.com", "states.${var.region}.amazonaws.com", "secretsmanager.${var.region}.amazonaws.com"]
      }
    }
  }

  # Step Functions: starting and describing executions of the named state machines. The
  # ARNs are built from the names, so a function's policy does not wait for the state
  # machine that calls it.
  dynamic "statement" {
    for_each = local.machine_actions[each.key]
    content {
      sid     = "StateMachine${replace(title(statement.key), "-", "")}"
      actions = statement.value
      resources = [
        local.state_machine_arns[statement.key],
        "arn:${local.partition}:states:${var.region}:${local.account_id}:execution:${var.name_prefix}-${statement.key}:*",
      ]
    }
  }

  dynamic "statement" {
    for_each = length(local.token_actions[each.key]) > 0 ? [1] : []
    content {
      sid       = "AnswerTaskTokens"
      actions   = local.token_actions[each.key]
      resources = ["*"] # no resource type exists for these actions (local.task_token_actions)
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
  #checkov:skip=CKV_AWS_338:Retention is an operator choice (var.log_retention_days, default 30 days): these are operational logs; the audit trail is CloudTrail's.

  name              = "/aws/lambda/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.regional.arn
}

resource "aws_lambda_function" "this" {
  for_each = local.functions
  #checkov:skip=CKV_AWS_116:Every invocation is synchronous (API Gateway) or from an event-source mapping; an asynchronous-invocation DLQ would never receive anything. Failures land in each queue's DLQ or the stream mapping's on-failure queue instead.
  #checkov:skip=CKV_AWS_117:The functions reach only AWS APIs over IAM-authenticated TLS; a VPC would add NAT gateways or interface endpoints per region for no data-path benefit.
  #checkov:skip=CKV_AWS_173:The environment holds resource names only (tables, bus, streams, the name of the payment provider's secret and its public address), no secrets; Lambda encrypts it at rest with its service key.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and a signing step in the release pipeline, which does not exist yet (infra/README.md, "Not done yet"); zips come from `make build` of the locked workspace.

  function_name = "${var.name_prefix}-${each.key}"
  description   = each.value.description
  role          = aws_iam_role.function[each.key].arn
  runtime       = var.declaration.lambda.runtime
  # Every function runs the one binary `make build` makes (the declaration's lambda.package),
  # which starts the function its handler names.
  handler          = each.key
  architectures    = [var.declaration.lambda.architecture]
  filename         = "${var.lambda_artifacts_dir}/${var.declaration.lambda.package}/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.lambda_artifacts_dir}/${var.declaration.lambda.package}/bootstrap.zip")
  memory_size      = each.value.memory_mb
  timeout          = each.value.timeout_s

  # No reservation unless asked for (infra/README.md, "Concurrency"): a reservation is taken
  # from the account's quota, of which 100 must stay unreserved, and it is also a ceiling
  # that throttles a burst of saga steps.
  reserved_concurrent_executions = try(each.value.reserved_concurrency, var.lambda_reserved_concurrency)

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

  lifecycle {
    # One setting, lambda.architecture in the declaration, for the build and the deploy:
    # infra/build.sh records what it built, and a zip of another architecture would only
    # fail at its first invocation (Runtime.InvalidEntrypoint).
    precondition {
      condition     = try(trimspace(file("${var.lambda_artifacts_dir}/architecture")), "none") == var.declaration.lambda.architecture
      error_message = "The zips in ${var.lambda_artifacts_dir} were not built for ${var.declaration.lambda.architecture} (infra/declaration.json, lambda.architecture): run `make build` (README.md, \"Deploy\")."
    }
  }
}
