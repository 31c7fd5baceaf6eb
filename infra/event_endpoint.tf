# EventBridge global endpoint over the commerce buses of the primary and secondary regions
# (a global endpoint pairs exactly two regions). PutEvents sent to the endpoint goes to the
# primary bus while its Route 53 health check is healthy, to the secondary bus otherwise;
# with replication on, every event also reaches the other bus (and its archive), which is
# also what brings traffic back to the primary automatically after a failover.

locals {
  event_endpoint_enabled = var.regions.secondary != null
}

data "aws_caller_identity" "current" {
  provider = aws.primary
}

# AWS's prescriptive health check for global endpoints (EventBridge user guide, "Setting up
# the Route 53 health check for EventBridge global endpoints"): unhealthy when the average
# ingestion-to-invocation latency of the primary region stays above 30 s for 5 minutes.
resource "aws_cloudwatch_metric_alarm" "event_bus_latency" {
  provider = aws.primary
  count    = local.event_endpoint_enabled ? 1 : 0

  alarm_name          = "${var.name_prefix}-event-bus-latency"
  alarm_description   = "EventBridge ingestion-to-invocation latency in ${var.regions.primary}: drives the global endpoint's failover"
  namespace           = "AWS/Events"
  metric_name         = "IngestionToInvocationStartLatency"
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  threshold           = 30000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = var.event_endpoint_treat_missing_data
  alarm_actions       = [module.primary.alarm_topic_arn]
  ok_actions          = [module.primary.alarm_topic_arn]
}

resource "aws_route53_health_check" "event_bus" {
  provider = aws.primary
  count    = local.event_endpoint_enabled ? 1 : 0

  type                            = "CLOUDWATCH_METRIC"
  cloudwatch_alarm_name           = aws_cloudwatch_metric_alarm.event_bus_latency[0].alarm_name
  cloudwatch_alarm_region         = var.regions.primary
  insufficient_data_health_status = "Unhealthy"

  tags = {
    Name = "${var.name_prefix}-event-bus-${var.regions.primary}"
  }
}

data "aws_iam_policy_document" "event_replication_assume" {
  provider = aws.primary
  count    = local.event_endpoint_enabled ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "event_replication" {
  provider = aws.primary
  count    = local.event_endpoint_enabled ? 1 : 0

  name               = "${var.name_prefix}-event-endpoint-replication"
  assume_role_policy = data.aws_iam_policy_document.event_replication_assume[0].json
}

# Replication puts each event on the other region's bus of the same name: PutEvents on
# exactly the two buses.
data "aws_iam_policy_document" "event_replication" {
  provider = aws.primary
  count    = local.event_endpoint_enabled ? 1 : 0

  statement {
    actions   = ["events:PutEvents"]
    resources = [module.primary.bus_arn, module.secondary[0].bus_arn]
  }
}

resource "aws_iam_role_policy" "event_replication" {
  provider = aws.primary
  count    = local.event_endpoint_enabled ? 1 : 0

  name   = "replicate-between-buses"
  role   = aws_iam_role.event_replication[0].id
  policy = data.aws_iam_policy_document.event_replication[0].json
}

resource "aws_cloudwatch_event_endpoint" "commerce" {
  provider = aws.primary
  count    = local.event_endpoint_enabled ? 1 : 0

  name        = "${var.name_prefix}-commerce"
  description = "The commerce bus in ${var.regions.primary}, failing over to ${var.regions.secondary}"
  role_arn    = aws_iam_role.event_replication[0].arn

  event_bus {
    event_bus_arn = module.primary.bus_arn
  }
  event_bus {
    event_bus_arn = module.secondary[0].bus_arn
  }

  replication_config {
    state = "ENABLED"
  }

  routing_config {
    failover_config {
      primary {
        health_check = aws_route53_health_check.event_bus[0].arn
      }
      secondary {
        route = var.regions.secondary
      }
    }
  }

  depends_on = [aws_iam_role_policy.event_replication]
}
