"""The bucket, through boto3, where the task runs: listing, manifests, presigned URLs for
the host, multipart bookkeeping, lifecycle rules. The host never sees the credentials.

boto3 >= 1.36 adds CRC checksum headers to uploads by default, which many S3-compatible
stores reject; the client asks for checksums only when an operation requires them.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from fabfile.config import Backup
from fabfile.config.secrets import redact
from fabfile.errors import UserError

from .catalog import Entry, StoredObject, group
from .manifest import Manifest, Verification
from .naming import clean_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403",
                    "InvalidToken", "ExpiredToken", "AuthorizationHeaderMalformed",
                    "InvalidClientTokenId", "Forbidden"}
RULE_PREFIX = "shipyard-backups"


class Store:
    """One environment's backup location: `bucket` under `prefix`."""

    def __init__(self, settings: Backup) -> None:
        import boto3  # deferred: ~0.1 s that every other `inv` call would pay
        from botocore.config import Config as BotoConfig

        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = clean_prefix(settings.prefix)
        self.endpoint = settings.endpoint_url or f"https://s3.{settings.region}.amazonaws.com"
        creds: dict[str, str] = {}
        if settings.access_key_id and settings.secret_access_key:
            creds = {"aws_access_key_id": settings.access_key_id.reveal(),
                     "aws_secret_access_key": settings.secret_access_key.reveal()}
        self.client: S3Client = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=settings.region, **creds,  # type: ignore[call-overload]
            config=BotoConfig(
                signature_version="s3v4",
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path" if settings.endpoint_url else "virtual"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10, read_timeout=120, max_pool_connections=16,
            ))

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + ("/" if self.prefix else "")

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn boto errors into one UserError that says what to check."""
        try:
            yield
        except ClientError as exc:
            raise UserError(self.explain(exc, doing)) from None
        except NoCredentialsError:
            raise UserError(f"no S3 credentials while {doing}: set the variables that "
                            "backup.access_key_id and backup.secret_access_key name") from None
        except BotoCoreError as exc:
            raise UserError(redact(f"cannot reach the S3 endpoint {self.endpoint} while "
                                   f"{doing}: {exc}")) from None

    def explain(self, exc: ClientError, doing: str) -> str:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket" or (code == "404" and doing.startswith("opening bucket")):
            return (f"bucket {self.bucket} does not exist at {self.endpoint}: check "
                    "backup.bucket, backup.endpoint_url and backup.region")
        if code in CREDENTIAL_CODES or status == 403:
            s = self.settings
            names = (f"{s.access_key_id.name} / {s.secret_access_key.name}"
                     if s.access_key_id and s.secret_access_key else "the AWS credentials")
            return (f"S3 refused the request while {doing} ({code or status}): check "
                    f"{names} and that they may use bucket {self.bucket}")
        return redact(f"S3 error while {doing}: {code or status} "
                      f"{error.get('Message', '')}".strip())

    def check_access(self) -> None:
        with self.errors(f"opening bucket {self.bucket}"):
            self.client.head_bucket(Bucket=self.bucket)

    def objects(self) -> list[StoredObject]:
        found: list[StoredObject] = []
        with self.errors(f"listing {self.where}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "")
            for page in pages:
                found.extend(StoredObject(o["Key"], o["Size"], o["LastModified"])
                             for o in page.get("Contents", []))
        return found

    def entries(self) -> list[Entry]:
        """Every backup in the bucket, newest first."""
        return group(self.prefix, self.objects())

    def read(self, key: str) -> bytes:
        with self.errors(f"reading s3://{self.bucket}/{key}"):
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def manifest(self, entry: Entry) -> Manifest:
        assert entry.manifest is not None
        where = f"s3://{self.bucket}/{entry.manifest.key}"
        return Manifest.from_json(self.read(entry.manifest.key), where)

    def manifests(self, entries: list[Entry]) -> dict[str, Manifest | UserError]:
        """Manifests of the complete entries, fetched in parallel; a bad one maps to its error."""
        def one(entry: Entry) -> Manifest | UserError:
            try:
                return self.manifest(entry)
            except UserError as exc:
                return exc
        complete = [e for e in entries if e.complete]
        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(zip([e.backup_id for e in complete], pool.map(one, complete),
                            strict=True))

    def verification(self, entry: Entry) -> Verification | None:
        return Verification.from_json(self.read(entry.verified.key)) if entry.verified else None

    def sse(self) -> dict[str, str]:
        """The SSE request parameters this environment's provider takes (`backup.sse`)."""
        if self.settings.sse == "none":
            return {}
        params: dict[str, str] = {"ServerSideEncryption": self.settings.sse}
        if self.settings.sse == "aws:kms" and self.settings.kms_key_id:
            params["SSEKMSKeyId"] = self.settings.kms_key_id
        return params

    def sse_headers(self) -> tuple[str, ...]:
        """The same as HTTP headers, for the host's single PUT (they are part of its signature)."""
        names = {"ServerSideEncryption": "x-amz-server-side-encryption",
                 "SSEKMSKeyId": "x-amz-server-side-encryption-aws-kms-key-id"}
        return tuple(f"{names[k]}: {v}" for k, v in self.sse().items())

    def presign(self, operation: str, params: dict[str, Any]) -> str:
        with self.errors("presigning URLs"):
            return self.client.generate_presigned_url(
                operation, Params={"Bucket": self.bucket, **params},
                ExpiresIn=self.settings.url_expiry)

    def start_multipart(self, key: str) -> str:
        with self.errors(f"starting the upload of {key}"):
            return self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, **self.sse())["UploadId"]  # type: ignore[arg-type]

    def part_urls(self, key: str, upload_id: str, count: int) -> list[str]:
        return [self.presign("upload_part", {"Key": key, "UploadId": upload_id,
                                             "PartNumber": n}) for n in range(1, count + 1)]

    def complete_multipart(self, key: str, upload_id: str, etags: list[tuple[int, str]]) -> None:
        with self.errors(f"completing the upload of {key}"):
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": tag} for n, tag in etags]})

    def abort_multipart(self, key: str, upload_id: str) -> None:
        with suppress(ClientError, BotoCoreError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def size_of(self, key: str) -> int | None:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise UserError(self.explain(exc, f"checking {key}")) from None

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        with self.errors(f"writing s3://{self.bucket}/{key}"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                   ContentType=content_type, **self.sse())  # type: ignore[arg-type]

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            with self.errors("deleting old backups"):
                result = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            if result.get("Errors"):
                first = result["Errors"][0]
                raise UserError(f"S3 did not delete {first.get('Key')}: {first.get('Code')} "
                                f"{first.get('Message', '')}")

    def delete_quietly(self, key: str) -> None:
        with suppress(ClientError, BotoCoreError):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def uploads(self) -> list[tuple[str, str, datetime]]:
        """Unfinished multipart uploads under the prefix: (key, upload id, initiated)."""
        found: list[tuple[str, str, datetime]] = []
        with self.errors("listing unfinished uploads"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "")
            for page in pages:
                found.extend((u["Key"], u["UploadId"], u["Initiated"])
                             for u in page.get("Uploads", []))
        return found

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        try:
            rules = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket)["Rules"]
            return [dict(r) for r in rules]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
                return []
            raise UserError(self.explain(exc, "reading the bucket's lifecycle rules")) from None

    def put_lifecycle_rules(self, rules: list[dict[str, Any]]) -> None:
        with self.errors("writing the bucket's lifecycle rules"):
            self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": rules})  # type: ignore[typeddict-item]

    def default_encryption(self) -> str | None:
        """The bucket's default SSE algorithm, None when it has none (or will not say)."""
        try:
            config = self.client.get_bucket_encryption(Bucket=self.bucket)
        except (ClientError, BotoCoreError):
            return None
        rules = config.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        for rule in rules:
            algorithm = rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
            if algorithm:
                return str(algorithm)
        return None


def lifecycle_rule(prefix: str, retention_days: int, *, expire: bool) -> dict[str, Any]:
    """Our rule: abort unfinished uploads after a day; expire backups when `expire`."""
    head = clean_prefix(prefix)
    rule: dict[str, Any] = {
        "ID": f"{RULE_PREFIX}-{head.replace('/', '-') or 'root'}",
        "Status": "Enabled",
        "Filter": {"Prefix": f"{head}/" if head else ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    if expire:
        rule["Expiration"] = {"Days": retention_days}
    return rule


def merge_rules(existing: list[dict[str, Any]],
                ours: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The bucket's rules with ours added or replaced by ID, every other rule kept as it is
    (S3 replaces the whole configuration on write), and warnings about rules that would
    expire our backups sooner."""
    kept = [r for r in existing if r.get("ID") != ours["ID"]]
    ours_prefix = ours["Filter"]["Prefix"]
    warnings = []
    for rule in kept:
        prefix = _rule_prefix(rule)
        days = rule.get("Expiration", {}).get("Days")
        overlaps = prefix is not None and (ours_prefix.startswith(prefix)
                                           or prefix.startswith(ours_prefix))
        if rule.get("Status") == "Enabled" and days and overlaps:
            wanted = ours.get("Expiration", {}).get("Days")
            if wanted is None or days < wanted:
                warnings.append(f"rule {rule.get('ID', '(no id)')!r} expires objects under "
                                f"{prefix!r} after {days} days, sooner than backup retention")
    return [*kept, ours], warnings


def _rule_prefix(rule: dict[str, Any]) -> str | None:
    """The key prefix a rule applies to ('' = whole bucket); None for tag-only filters."""
    if "Prefix" in rule:
        return str(rule["Prefix"])
    rule_filter = rule.get("Filter", {})
    if "Prefix" in rule_filter:
        return str(rule_filter["Prefix"])
    if "And" in rule_filter:
        return str(rule_filter["And"].get("Prefix", ""))
    return "" if not rule_filter else None
