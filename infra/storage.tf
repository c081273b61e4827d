# The bucket and the table. Key layouts: shared/src/adapters/s3/mod.rs and
# shared/src/adapters/dynamodb/mod.rs.
#
#   blobs/<algorithm>/<hex>   content, written once after its digest was verified
#   uploads/<uuid>/...        upload sessions (meta + staged chunks)
#   audit/...                 CloudEvents written by the projector

resource "aws_s3_bucket" "this" {
  bucket        = var.bucket_name != "" ? var.bucket_name : null
  bucket_prefix = var.bucket_name == "" ? "${lower(var.name)}-" : null
  # Never delete blobs with the stack: empty the bucket by hand first (README.md, tearing down).
  force_destroy = false
  tags          = var.tags
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  # A commit that crashed leaves an invisible, billed multipart upload on a blob key.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # Safety net behind the janitor, which expires idle sessions after upload_max_age_secs.
  rule {
    id     = "expire-abandoned-upload-sessions"
    status = "Enabled"

    filter {
      prefix = "uploads/"
    }

    expiration {
      days = 7
    }
  }
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  # S3 rejects a bucket policy while the public access block is being changed.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_dynamodb_table" "this" {
  name         = local.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  attribute {
    name = "log_bucket"
    type = "S"
  }

  attribute {
    name = "log_position"
    type = "S"
  }

  # Every event by day and shard, then position: readers of the whole log (audit, rebuilds) page
  # through it; appends write no shared item (docs/log-scale-out.md).
  global_secondary_index {
    name               = "log"
    hash_key           = "log_bucket"
    range_key          = "log_position"
    projection_type    = "INCLUDE"
    non_key_attributes = ["event"]
  }

  stream_enabled   = true
  stream_view_type = "NEW_IMAGE"

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  # The table holds the event log, the source of truth.
  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}
