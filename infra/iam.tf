# One role per function, each with one inline policy scoped to the bucket prefixes, the table and
# its stream that the function uses, and to its own log group. No managed policies. Mirrors the
# roles in ../template.yaml.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

locals {
  bucket_arn = aws_s3_bucket.this.arn
  table_arn  = aws_dynamodb_table.this.arn
}

# ------------------------------------------------------------------------------------------- api

resource "aws_iam_role" "api" {
  name               = "${var.name}-api"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "api" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["api"].arn}:*"]
  }

  # Blobs: HeadObject/GetObject (also what presigned GET URLs are signed with), conditional
  # PutObject and the multipart upload of a commit (Create/UploadPart/UploadPartCopy/Complete =
  # PutObject). Blobs are never deleted by the api.
  statement {
    sid       = "Blobs"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${local.bucket_arn}/blobs/*"]
  }

  statement {
    sid       = "UploadSessions"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${local.bucket_arn}/uploads/*"]
  }

  # Lists an upload session's chunks. Not limited by s3:prefix: without ListBucket on the bucket,
  # S3 answers 403 instead of 404 for a missing blob or session, and the api must tell "absent"
  # from "denied".
  statement {
    sid       = "ListBucket"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
  }

  # TransactWriteItems is authorised per action inside it (Put/Update/Delete/ConditionCheck).
  statement {
    sid = "EventLogAndViews"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:Query",
      "dynamodb:DescribeTable",
    ]
    resources = [local.table_arn]
  }

  # The audit log reads the log's time index.
  statement {
    sid       = "EventLogIndex"
    actions   = ["dynamodb:Query"]
    resources = ["${local.table_arn}/index/log"]
  }
}

resource "aws_iam_role_policy" "api" {
  name   = "berth-api"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}

# ------------------------------------------------------------------------------------- projector

resource "aws_iam_role" "projector" {
  name               = "${var.name}-projector"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "projector" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["projector"].arn}:*"]
  }

  statement {
    sid       = "ReadTableStream"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
    resources = [aws_dynamodb_table.this.stream_arn]
  }

  statement {
    sid       = "ListTableStreams"
    actions   = ["dynamodb:ListStreams"]
    resources = ["${local.table_arn}/stream/*"]
  }

  # Checkpoints only: items whose partition key is "checkpoint".
  statement {
    sid       = "Checkpoints"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [local.table_arn]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = ["checkpoint"]
    }
  }

  # A new subscription replays the log: the epoch item and the events numbered before the time
  # index (partition "log"), then the time index.
  statement {
    sid       = "ReplayLog"
    actions   = ["dynamodb:GetItem", "dynamodb:Query"]
    resources = [local.table_arn]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = ["log"]
    }
  }

  statement {
    sid       = "ReplayLogIndex"
    actions   = ["dynamodb:Query"]
    resources = ["${local.table_arn}/index/log"]
  }

  statement {
    sid       = "AuditEvents"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/audit/*"]
  }
}

resource "aws_iam_role_policy" "projector" {
  name   = "berth-projector"
  role   = aws_iam_role.projector.id
  policy = data.aws_iam_policy_document.projector.json
}

# --------------------------------------------------------------------------------------- janitor

resource "aws_iam_role" "janitor" {
  name               = "${var.name}-janitor"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "janitor" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["janitor"].arn}:*"]
  }

  statement {
    sid       = "ListUploadSessions"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["uploads/*"]
    }
  }

  statement {
    sid       = "DeleteUploadSessions"
    actions   = ["s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.bucket_arn}/uploads/*"]
  }

  # Incomplete multipart uploads a crashed commit left on blob keys.
  statement {
    sid       = "ListMultipartUploads"
    actions   = ["s3:ListBucketMultipartUploads"]
    resources = [local.bucket_arn]
  }

  statement {
    sid       = "AbortBlobMultipartUploads"
    actions   = ["s3:AbortMultipartUpload"]
    resources = ["${local.bucket_arn}/blobs/*"]
  }

  # Scheduled garbage collection: lists the blobs and deletes those nothing uses.
  statement {
    sid       = "ListBlobs"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["blobs/*"]
    }
  }

  statement {
    sid       = "CollectBlobs"
    actions   = ["s3:GetObject", "s3:DeleteObject"]
    resources = ["${local.bucket_arn}/blobs/*"]
  }

  # Scheduled retention, replication and GC runs: the log and the views, as the api function uses them.
  statement {
    sid = "EventLogAndViews"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:Query",
      "dynamodb:DescribeTable",
    ]
    resources = [local.table_arn]
  }
}

resource "aws_iam_role_policy" "janitor" {
  name   = "berth-janitor"
  role   = aws_iam_role.janitor.id
  policy = data.aws_iam_policy_document.janitor.json
}
