# Every variable but name, lambda_zip_dir and tags has a twin parameter in ../template.yaml
# (snake_case here, CamelCase there); scripts/check-deploy.sh checks that the two sets agree.

variable "name" {
  description = "Prefix of every named resource (functions, roles, log groups); also the table name when table_name is empty."
  type        = string
  default     = "berth"

  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{1,40}$", var.name))
    error_message = "The name must be 1 to 40 letters, digits or hyphens (function names are <name>-projector, at most 64 characters)."
  }
}

variable "bucket_name" {
  description = "Name of the S3 bucket for blobs, upload sessions and audit events. Empty: a unique name starting with \"<name>-\"."
  type        = string
  default     = ""

  validation {
    condition     = var.bucket_name == "" || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket_name must be empty or a valid S3 bucket name."
  }
}

variable "table_name" {
  description = "Name of the DynamoDB table for the event log and views. Empty: the value of name."
  type        = string
  default     = ""
}

variable "api_auth_type" {
  description = "Auth type of the api function URL. NONE makes the registry public: Berth has no access control yet (it comes with projects and robot accounts), so anyone who knows the URL can push and delete. AWS_IAM requires SigV4-signed requests (service \"lambda\"), which docker cannot send."
  type        = string
  default     = "NONE"

  validation {
    condition     = contains(["NONE", "AWS_IAM"], var.api_auth_type)
    error_message = "The api_auth_type must be NONE or AWS_IAM."
  }
}

variable "blob_redirect" {
  description = "Answer blob GETs with 307 to a presigned S3 URL (BERTH_BLOB_REDIRECT). false streams blobs through Lambda (6 MB response limit)."
  type        = bool
  default     = true
}

variable "presign_ttl_secs" {
  description = "Lifetime of presigned blob URLs in seconds (BERTH_PRESIGN_TTL_SECS). A URL also dies with the function's session credentials, a few hours at most."
  type        = number
  default     = 900

  validation {
    condition     = var.presign_ttl_secs >= 1 && var.presign_ttl_secs <= 604800
    error_message = "The presign_ttl_secs must be from 1 to 604800 (7 days, the SigV4 limit)."
  }
}

variable "upload_max_age_secs" {
  description = "The janitor aborts upload sessions idle for longer than this (BERTH_UPLOAD_MAX_AGE_SECS)."
  type        = number
  default     = 86400

  validation {
    condition     = var.upload_max_age_secs >= 60
    error_message = "The upload_max_age_secs must be at least 60."
  }
}

variable "janitor_schedule" {
  description = "EventBridge schedule expression of the janitor, rate(...) or cron(...); retention schedules run at most this often."
  type        = string
  default     = "rate(15 minutes)"
}

variable "secret_key" {
  description = "The key replication's registry credentials are sealed with (BERTH_SECRET_KEY): 32 bytes in base64 (head -c 32 /dev/urandom | base64). Empty: registry endpoints take no credential."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = can(regex("^$|^[A-Za-z0-9+/]{43}=$", var.secret_key))
    error_message = "The secret_key must be empty or the base64 of 32 bytes."
  }
}

variable "log_level" {
  description = "RUST_LOG of the three functions (tracing EnvFilter syntax, e.g. info or berth=debug,info)."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Retention of the functions' CloudWatch log groups, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "memory_size" {
  description = "Memory of the api function in MB (CPU grows with it; digests of large chunks are CPU-bound). The projector and janitor use 256 MB."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "The memory_size must be from 128 to 10240."
  }
}

variable "api_timeout_secs" {
  description = "Timeout of the api function; an upload commit re-reads and hashes the whole blob, so large layers need time."
  type        = number
  default     = 120

  validation {
    condition     = var.api_timeout_secs >= 3 && var.api_timeout_secs <= 900
    error_message = "The api_timeout_secs must be from 3 to 900."
  }
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection on the table that holds the event log (the source of truth). Set false before destroying."
  type        = bool
  default     = true
}

variable "lambda_zip_dir" {
  description = "Directory holding <bin>/bootstrap.zip for api, projector and janitor, as written by `cargo lambda build --release --arm64 --output-format zip`. Empty: ../target/lambda relative to this module."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}
