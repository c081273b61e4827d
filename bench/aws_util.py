#!/usr/bin/env python3
"""Small S3/DynamoDB helpers for the berth-aws runs of bench/run.sh, on the local stack.

Run with the local stack's Python (.venv/bin/python, which has boto3 as a dependency of moto).
Endpoints and keys come from the environment run.sh sets: AWS_ENDPOINT_URL_S3 (s3s-fs),
AWS_ENDPOINT_URL_DYNAMODB (moto), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION.

Usage:
  aws_util.py bucket-bytes BUCKET PREFIX   prints the total size of the objects under PREFIX
  aws_util.py drop BUCKET TABLE            deletes every object and the bucket, and the table
"""

import os
import sys

import boto3
from botocore.config import Config

# s3s-fs checks SigV4; keep the request plain (no flexible checksums) so any boto3 version works.
CONFIG = Config(
    s3={"addressing_style": "path"},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
    retries={"max_attempts": 3},
)


# boto3 reads AWS_DEFAULT_REGION, Berth (the Rust SDK) AWS_REGION: take either.
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def s3():
    return boto3.client("s3", config=CONFIG, region_name=REGION)


def bucket_bytes(bucket, prefix):
    total = 0
    for page in s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        total += sum(o["Size"] for o in page.get("Contents", []))
    print(total)


def drop(bucket, table):
    failed = []
    client = s3()
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            # One DeleteObject per key: DeleteObjects needs a checksum header some servers refuse.
            for o in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=o["Key"])
        client.delete_bucket(Bucket=bucket)
    except Exception as e:  # noqa: BLE001 - report and go on to the table
        failed.append(f"bucket {bucket}: {e}")
    try:
        boto3.client("dynamodb", region_name=REGION).delete_table(TableName=table)
    except Exception as e:  # noqa: BLE001
        failed.append(f"table {table}: {e}")
    if failed:
        print("aws_util drop: " + "; ".join(failed), file=sys.stderr)
        sys.exit(1)


def main():
    cmd, *args = sys.argv[1:]
    if cmd == "bucket-bytes":
        bucket_bytes(*args)
    elif cmd == "drop":
        drop(*args)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
