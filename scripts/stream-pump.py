"""A local stand-in for Lambda's DynamoDB Streams event source mapping.

Reads the stream of a DynamoDB table (moto, from `scripts/local-stack.sh up`) and POSTs the records,
in batches shaped exactly like the events Lambda delivers, to a Lambda invoke endpoint: the cargo-lambda
emulator's (`cargo lambda watch -A 127.0.0.1 -P 9000` serves every binary of the workspace) or any
Runtime-API-compatible one. It honours partial batch failures as the real mapping does with
`FunctionResponseTypes: [ReportBatchItemFailures]`: when the response names failed records, the batch
is sent again from the first of them; when the invocation itself fails, the whole batch is sent again.
After `--max-retries` failed attempts of one batch it stops with exit status 1 (the real mapping
would discard the batch or hand it to an on-failure destination; locally, stopping loudly is better).

Usage (run with the project venv's python: /work/main/.venv/bin/python):

    stream-pump.py --table berth [--function projector] [--invoke-url http://127.0.0.1:9000]
                   [--batch-size 100] [--after SEQUENCE_NUMBER] [--follow] [--poll-secs 1]
                   [--max-retries 3]

It starts at the oldest record of the stream (TRIM_HORIZON), or after the stream position `--after`.
Without `--follow` it stops once it has delivered everything in the stream. It prints one JSON line
per invocation to stdout (records sent, failures reported) and a summary line at the end. The AWS
endpoint comes from `--endpoint` or `AWS_ENDPOINT_URL_DYNAMODB`; credentials from the environment.

Each poll asks for a fresh shard iterator after the last delivered record instead of following
`NextShardIterator`: moto replaces a table's stream shard when it rolls back a cancelled transaction,
so an iterator held across a conflict would go stale (on AWS, iterators expire after 15 minutes too).
"""

import argparse
import base64
import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.request

import boto3

# Lambda's defaults for a DynamoDB event source mapping.
DEFAULT_BATCH_SIZE = 100
DEFAULT_MAX_RETRIES = 3
INVOKE_TIMEOUT_SECS = 300


def attribute(value):
    """A boto3 (low-level client) attribute value as Lambda's JSON carries it: binaries in base64."""
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": base64.b64encode(bytes(inner)).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(bytes(b)).decode() for b in inner]}
    if kind == "M":
        return {"M": {k: attribute(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [attribute(v) for v in inner]}
    return {kind: inner}


def item(image):
    return {name: attribute(value) for name, value in image.items()}


def epoch(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    return float(value)


def lambda_record(record, stream_arn, region):
    """A GetRecords record as an element of the `Records` array of a Lambda DynamoDB event."""
    change = record["dynamodb"]
    out = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", region),
        "eventSourceARN": stream_arn,
        "dynamodb": {
            "ApproximateCreationDateTime": epoch(change.get("ApproximateCreationDateTime", time.time())),
            "Keys": item(change.get("Keys", {})),
            "SequenceNumber": change["SequenceNumber"],
            "SizeBytes": change.get("SizeBytes", 0),
            "StreamViewType": change.get("StreamViewType", "NEW_IMAGE"),
        },
    }
    for image in ("NewImage", "OldImage"):
        if image in change:
            out["dynamodb"][image] = item(change[image])
    return out


def invoke(url, records):
    """POSTs one batch; returns the failed SequenceNumbers, or None when the invocation failed."""
    body = json.dumps({"Records": records}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=INVOKE_TIMEOUT_SECS) as response:
            text = response.read().decode() or "{}"
    except (urllib.error.URLError, OSError) as e:
        log(f"invocation failed: {e}")
        return None
    try:
        answer = json.loads(text)
    except json.JSONDecodeError:
        log(f"invocation answered no JSON: {text[:200]}")
        return None
    if not isinstance(answer, dict) or "errorType" in answer or "errorMessage" in answer:
        log(f"the function failed: {text[:500]}")
        return None
    failures = answer.get("batchItemFailures") or []
    return [f.get("itemIdentifier") for f in failures]


def first_failed(records, failed):
    """The index of the earliest record named in `failed`; 0 (the whole batch) for unknown names."""
    positions = [r["dynamodb"]["SequenceNumber"] for r in records]
    indexes = [positions.index(f) for f in failed if f in positions]
    if len(indexes) < len(failed):
        log(f"the function named records not in the batch: {failed}; retrying the whole batch")
        return 0
    return min(indexes)


def deliver(url, records, max_retries, stats):
    """Delivers `records` until every one succeeded; False after `max_retries` failed attempts."""
    attempts = 0
    while records:
        failed = invoke(url, records)
        stats["invocations"] += 1
        print(json.dumps({"records": len(records), "failed": failed}), flush=True)
        if failed == []:
            stats["records"] += len(records)
            return True
        attempts += 1
        if attempts > max_retries:
            log(f"giving up after {attempts} attempts at a batch of {len(records)} records")
            return False
        if failed is not None:
            index = first_failed(records, failed)
            stats["records"] += index
            records = records[index:]
        time.sleep(min(2 ** attempts * 0.1, 5))
    return True


def log(message):
    print(f"stream-pump: {message}", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--function", default="projector")
    parser.add_argument("--invoke-url", default="http://127.0.0.1:9000",
                        help="the Lambda invoke API's base URL")
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--after", help="start after this stream SequenceNumber (default: the oldest record)")
    parser.add_argument("--follow", action="store_true", help="keep polling for new records")
    parser.add_argument("--poll-secs", type=float, default=1.0)
    parser.add_argument("--max-retries", type=int, default=DEFAULT_MAX_RETRIES)
    args = parser.parse_args()

    url = f"{args.invoke_url.rstrip('/')}/2015-03-31/functions/{args.function}/invocations"
    dynamodb = boto3.client("dynamodb", endpoint_url=args.endpoint, region_name=args.region)
    streams = boto3.client("dynamodbstreams", endpoint_url=args.endpoint, region_name=args.region)
    stream_arn = dynamodb.describe_table(TableName=args.table)["Table"].get("LatestStreamArn")
    if not stream_arn:
        log(f"table {args.table} has no stream")
        return 2
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]

    stats = {"invocations": 0, "records": 0}
    after = args.after  # SequenceNumber of the last delivered record
    while True:
        if after is None:
            iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard,
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        else:
            iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard,
                                                  ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                                  SequenceNumber=after)["ShardIterator"]
        got = streams.get_records(ShardIterator=iterator, Limit=args.batch_size)["Records"]
        if got:
            records = [lambda_record(r, stream_arn, args.region) for r in got]
            if not deliver(url, records, args.max_retries, stats):
                print(json.dumps({"summary": stats, "stopped": True}), flush=True)
                return 1
            after = records[-1]["dynamodb"]["SequenceNumber"]
            continue
        if not args.follow:
            print(json.dumps({"summary": stats}), flush=True)
            return 0
        time.sleep(args.poll_secs)


if __name__ == "__main__":
    sys.exit(main())
