# The same outputs as ../template.yaml (snake_case here, CamelCase there).

output "registry_url" {
  description = "The registry's base URL (the api function URL); the OCI API is under /v2/."
  value       = aws_lambda_function_url.api.function_url
}

output "registry_host" {
  description = "The registry host for docker/skopeo/oras, e.g. docker push HOST/library/app:1"
  value       = trimsuffix(replace(aws_lambda_function_url.api.function_url, "https://", ""), "/")
}

output "bucket_name" {
  description = "The S3 bucket (BERTH_S3_BUCKET)"
  value       = aws_s3_bucket.this.id
}

output "table_name" {
  description = "The DynamoDB table (BERTH_DYNAMODB_TABLE)"
  value       = aws_dynamodb_table.this.name
}

output "table_stream_arn" {
  description = "The table's stream, which the projector consumes"
  value       = aws_dynamodb_table.this.stream_arn
}

output "api_function_arn" {
  description = "The api function"
  value       = aws_lambda_function.api.arn
}

output "projector_function_arn" {
  description = "The projector function"
  value       = aws_lambda_function.projector.arn
}

output "janitor_function_arn" {
  description = "The janitor function"
  value       = aws_lambda_function.janitor.arn
}
