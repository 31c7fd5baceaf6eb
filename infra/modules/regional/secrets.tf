# The secrets the functions read at cold start (the declaration's `secrets`): created empty in
# every region, encrypted with the region's key. Terraform never holds a value (it would sit in
# the state): the operator puts it once per region (README, Deploy), so each region keeps
# working on its own when another is lost.

resource "aws_secretsmanager_secret" "this" {
  for_each = var.declaration.secrets
  #checkov:skip=CKV2_AWS_57:The payment provider's key is rolled in the provider's dashboard (Stripe: roll key, with an overlap), then put here (infra/README.md, "Secrets"); a rotation Lambda cannot mint provider keys.

  name                    = "${var.name_prefix}-${each.key}"
  description             = each.value.description
  kms_key_id              = aws_kms_key.regional.arn
  recovery_window_in_days = 7
}
