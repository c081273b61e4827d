# Berth on AWS: the api (OCI distribution API behind a Lambda function URL), the projector
# (DynamoDB Stream of the event log -> CloudEvents under audit/) and the janitor (expires abandoned
# uploads), on one S3 bucket and one DynamoDB table. The same stack as ../template.yaml (SAM); keep
# the two in step. Storage is in storage.tf, permissions in iam.tf.

locals {
  table_name = var.table_name != "" ? var.table_name : var.name
  zip_dir    = var.lambda_zip_dir != "" ? var.lambda_zip_dir : "${path.module}/../target/lambda"

  function_names = {
    api       = "${var.name}-api"
    projector = "${var.name}-projector"
    janitor   = "${var.name}-janitor"
  }

  # What all three functions read.
  common_env = {
    BERTH_S3_BUCKET      = aws_s3_bucket.this.id
    BERTH_DYNAMODB_TABLE = aws_dynamodb_table.this.name
    BERTH_SECRET_KEY     = var.secret_key
    RUST_LOG             = var.log_level
  }
}

# Log groups under the names Lambda writes to by default, created first so that retention applies.
resource "aws_cloudwatch_log_group" "function" {
  for_each = local.function_names

  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

# ------------------------------------------------------------------------------------------- api

resource "aws_lambda_function" "api" {
  function_name    = local.function_names.api
  description      = "Berth OCI distribution API (lambda_http behind a function URL)"
  role             = aws_iam_role.api.arn
  filename         = "${local.zip_dir}/api/bootstrap.zip"
  source_code_hash = filebase64sha256("${local.zip_dir}/api/bootstrap.zip")
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["arm64"]
  memory_size      = var.memory_size
  timeout          = var.api_timeout_secs

  environment {
    variables = merge(local.common_env, {
      BERTH_BLOB_REDIRECT    = var.blob_redirect ? "true" : "false"
      BERTH_PRESIGN_TTL_SECS = tostring(var.presign_ttl_secs)
    })
  }

  tags       = var.tags
  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.api]
}

# Access control comes in a later issue (projects, robot accounts, the token service); until then
# api_auth_type = "NONE" means anyone with the URL can push and delete.
resource "aws_lambda_function_url" "api" {
  function_name      = aws_lambda_function.api.function_name
  authorization_type = var.api_auth_type
  invoke_mode        = "BUFFERED"
}

# A public function URL needs two statements in the function's policy: lambda:InvokeFunctionUrl
# for auth type NONE, and lambda:InvokeFunction restricted to calls through the URL.
resource "aws_lambda_permission" "api_public_url" {
  count = var.api_auth_type == "NONE" ? 1 : 0

  statement_id           = "BerthPublicFunctionUrl"
  function_name          = aws_lambda_function.api.function_name
  action                 = "lambda:InvokeFunctionUrl"
  principal              = "*"
  function_url_auth_type = "NONE"
}

# The second statement needs the lambda:InvokedViaFunctionUrl condition, which aws_lambda_permission
# can only express from provider 6.29 on (invoked_via_function_url). Within hashicorp/aws ~> 5.0 a
# one-resource CloudFormation stack adds it; replace it with an aws_lambda_permission once the
# module moves to provider 6.
resource "aws_cloudformation_stack" "api_public_invoke" {
  count = var.api_auth_type == "NONE" ? 1 : 0

  name = "${var.name}-api-url-invoke"
  template_body = jsonencode({
    AWSTemplateFormatVersion = "2010-09-09"
    Description              = "Berth: lambda:InvokeFunction for the public function URL of ${aws_lambda_function.api.function_name}"
    Resources = {
      InvokeViaFunctionUrl = {
        Type = "AWS::Lambda::Permission"
        Properties = {
          FunctionName          = aws_lambda_function.api.function_name
          Action                = "lambda:InvokeFunction"
          Principal             = "*"
          InvokedViaFunctionUrl = true
        }
      }
    }
  })
  tags = var.tags
}

# ------------------------------------------------------------------------------------- projector

resource "aws_lambda_function" "projector" {
  function_name    = local.function_names.projector
  description      = "Berth projector (DynamoDB Stream of the event log -> the subscriptions, the audit archive under audit/)"
  role             = aws_iam_role.projector.arn
  filename         = "${local.zip_dir}/projector/bootstrap.zip"
  source_code_hash = filebase64sha256("${local.zip_dir}/projector/bootstrap.zip")
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["arm64"]
  memory_size      = 256
  timeout          = 60

  environment {
    variables = local.common_env
  }

  tags       = var.tags
  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.projector]
}

resource "aws_lambda_event_source_mapping" "projector" {
  event_source_arn                   = aws_dynamodb_table.this.stream_arn
  function_name                      = aws_lambda_function.projector.arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 100
  maximum_batching_window_in_seconds = 1
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 10
  function_response_types            = ["ReportBatchItemFailures"]

  # Only new events (pk "stream#...", sk "v#..."); not the stream heads nor the views.
  filter_criteria {
    filter {
      pattern = jsonencode({
        eventName = ["INSERT"]
        dynamodb = {
          Keys = {
            pk = { S = [{ prefix = "stream#" }] }
            sk = { S = [{ prefix = "v#" }] }
          }
        }
      })
    }
  }

  depends_on = [aws_iam_role_policy.projector]
}

# --------------------------------------------------------------------------------------- janitor

resource "aws_lambda_function" "janitor" {
  function_name    = local.function_names.janitor
  description      = "Berth janitor (expires abandoned upload sessions and multipart uploads, runs scheduled retention and GC)"
  role             = aws_iam_role.janitor.arn
  filename         = "${local.zip_dir}/janitor/bootstrap.zip"
  source_code_hash = filebase64sha256("${local.zip_dir}/janitor/bootstrap.zip")
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["arm64"]
  memory_size      = 256
  timeout          = 900 # scheduled GC waits out its fence (about 50 s) before it collects

  environment {
    variables = merge(local.common_env, {
      BERTH_UPLOAD_MAX_AGE_SECS = tostring(var.upload_max_age_secs)
    })
  }

  tags       = var.tags
  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.janitor]
}

resource "aws_cloudwatch_event_rule" "janitor" {
  name                = "${var.name}-janitor"
  description         = "Berth janitor run"
  schedule_expression = var.janitor_schedule
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "janitor" {
  rule = aws_cloudwatch_event_rule.janitor.name
  arn  = aws_lambda_function.janitor.arn
}

resource "aws_lambda_permission" "janitor_schedule" {
  statement_id  = "BerthJanitorSchedule"
  function_name = aws_lambda_function.janitor.function_name
  action        = "lambda:InvokeFunction"
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.janitor.arn
}
