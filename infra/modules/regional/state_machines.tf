# Step Functions state machines from the declaration's `state_machines` section:
#   "place-order": { "env": "PLACE_ORDER_STATE_MACHINE_ARN", "definition": "place-order.asl.json",
#                    "type": "STANDARD", "functions": ["inventory-reserve", ...],
#                    "parameters": { "retry_interval_seconds": { "aws": 2, "local": 1 } } }
# The definition (infra/state-machines/<definition>) is rendered with templatefile:
# ${<function>_arn} (dashes as underscores) for each function it declares, and each
# parameter's `aws` value, or its `value` where AWS and the local stack share one, written as
# JSON (a number as itself, a list of errors as a JSON array);
# var.state_machine_template_vars overrides them. Each state
# machine has its own role (invoke exactly its declared functions), its own encrypted log
# group (ALL events, without execution data), X-Ray, and the regional KMS key.

locals {
  state_machines = try(var.declaration.state_machines, {})

  state_machine_arns = {
    for name, _ in local.state_machines :
    name => "arn:${local.partition}:states:${var.region}:${local.account_id}:stateMachine:${var.name_prefix}-${name}"
  }
}

data "aws_iam_policy_document" "assume_states" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "state_machine" {
  for_each = local.state_machines

  name               = "${var.name_prefix}-sfn-${each.key}${local.iam_suffix}"
  assume_role_policy = data.aws_iam_policy_document.assume_states.json
}

data "aws_iam_policy_document" "state_machine" {
  for_each = local.state_machines

  dynamic "statement" {
    for_each = length(try(each.value.functions, [])) > 0 ? [1] : []
    content {
      sid     = "InvokeItsFunctions"
      actions = ["lambda:InvokeFunction"]
      resources = flatten([
        for fn in each.value.functions : [aws_lambda_function.this[fn].arn, "${aws_lambda_function.this[fn].arn}:*"]
      ])
    }
  }

  # Its own state is encrypted with the regional key. Step Functions uses the key with this
  # role's own credentials (not through a caller), naming the state machine in the
  # encryption context; kms:ViaService would not be set, so it cannot be the condition.
  statement {
    sid       = "RegionalKeyForItsOwnState"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.regional.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:states:stateMachineArn"
      values   = [local.state_machine_arns[each.key]]
    }
  }

  # Log delivery to its encrypted log group asks for a data key in the role's name, with
  # the logs source in the encryption context.
  statement {
    sid       = "RegionalKeyForLogDelivery"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.regional.arn]
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:SourceArn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:*"]
    }
  }

  statement {
    sid = "DeliverLogs"
    actions = [
      "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "state_machine" {
  for_each = local.state_machines

  name   = "least-privilege"
  role   = aws_iam_role.state_machine[each.key].id
  policy = data.aws_iam_policy_document.state_machine[each.key].json
}

resource "aws_cloudwatch_log_group" "state_machine" {
  for_each = local.state_machines
  #checkov:skip=CKV_AWS_338:Retention is an operator choice (var.log_retention_days, default 30 days): operational logs; the audit trail is CloudTrail's.

  name              = "/aws/vendedlogs/states/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.regional.arn
}

resource "aws_sfn_state_machine" "this" {
  for_each = local.state_machines
  #checkov:skip=CKV_AWS_285:Execution data (order lines, amounts, payment references, task tokens) stays out of the logs on purpose; Step Functions keeps every standard execution's full history, inputs and outputs included, for 90 days after it closes, which is where to debug one.

  name     = "${var.name_prefix}-${each.key}"
  type     = try(each.value.type, "STANDARD")
  role_arn = aws_iam_role.state_machine[each.key].arn

  definition = templatefile(
    "${var.state_machines_dir}/${try(each.value.definition, "${each.key}.asl.json")}",
    merge(
      { for fn in try(each.value.functions, []) : "${replace(fn, "-", "_")}_arn" => aws_lambda_function.this[fn].arn },
      { for name, p in try(each.value.parameters, {}) : name => jsonencode(try(p.aws, p.value)) },
      { for name, v in var.state_machine_template_vars : name => jsonencode(v) },
    )
  )

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine[each.key].arn}:*"
    include_execution_data = false # executions carry order and payment details
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = aws_kms_key.regional.arn
    kms_data_key_reuse_period_seconds = 300
  }

  depends_on = [aws_iam_role_policy.state_machine]
}
