output "tables_by_region" {
  description = "Region -> table -> {name, arn (that region's replica), stream_arn (that replica's stream)}."
  value       = local.tables_by_region
}

output "table_key_arns" {
  description = "Region -> ARN of the tables' KMS key (the multi-Region primary or its replica) in that region."
  value       = local.table_key_arns
}

output "user_pool_id" {
  value = aws_cognito_user_pool.this.id
}

output "app_client_id" {
  value = aws_cognito_user_pool_client.app.id
}

output "jwt_issuer" {
  value = "https://${aws_cognito_user_pool.this.endpoint}"
}

output "jwt_audience" {
  value = [aws_cognito_user_pool_client.app.id]
}
