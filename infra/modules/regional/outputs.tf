output "regional_domain" {
  description = "This region's own API name."
  value       = var.regional_domain
}

output "api_id" {
  value = aws_apigatewayv2_api.http.id
}

output "bus_arn" {
  value = aws_cloudwatch_event_bus.commerce.arn
}

output "bus_name" {
  value = aws_cloudwatch_event_bus.commerce.name
}

output "alarm_topic_arn" {
  value = aws_sns_topic.alarms.arn
}

output "api_health_check_id" {
  value = aws_route53_health_check.api.id
}

output "function_arns" {
  value = { for name, f in aws_lambda_function.this : name => f.arn }
}

output "forwarded_routes" {
  description = "Routes this region forwards to the home region (empty in the home region)."
  value       = [for name, spec in local.forwarded_routes : spec.route]
}

output "promotion" {
  description = "What promoting this region to home changes (README.md, \"Failover\"): rules to enable, table-stream mappings to enable, forwarded routes to repoint at their local integration (or, in a third region, home integrations to repoint at the new home)."
  value = {
    api_id                = aws_apigatewayv2_api.http.id
    bus_name              = aws_cloudwatch_event_bus.commerce.name
    rules                 = [for r in aws_cloudwatch_event_rule.this : r.name]
    table_stream_mappings = [for key, m in aws_lambda_event_source_mapping.this : m.uuid if try(local.mappings[key].table_stream, null) != null]
    routes = {
      for name, spec in local.forwarded_routes : spec.route => {
        route_id             = aws_apigatewayv2_route.function[name].id
        local_integration_id = aws_apigatewayv2_integration.function[name].id
        home_integration_id  = aws_apigatewayv2_integration.home[name].id
      }
    }
  }
}
