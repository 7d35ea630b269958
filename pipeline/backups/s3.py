"""An S3-compatible bucket as a backup destination (AWS S3, MinIO, Ceph, Garage, ...).

boto3: the reference client of the S3 API, kept by AWS, and the one every S3-compatible
server tests against; it does multipart uploads of large archives and retries by itself.
It is an extra (`pip install 'temps[s3]'`), imported with the first use: a daemon that
backs up to a directory never loads it.

An archive is written to a temporary file first, then uploaded: the manifest needs its
sha256 and size before the upload ends, and S3 takes no appends. The access keys are kept
sealed in the home (`temps backup s3-login`), read at each use.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from pipeline.errors import BackupFailed, InvalidInput, NotFound

Keys = tuple[str, str]  # access key id, secret access key
PART_BYTES = 64 * 1024 * 1024


class Bucket:
    def __init__(self, url: str, bucket: str, keys: Callable[[], Keys | None]) -> None:
        if not url.startswith(("http://", "https://")) or not bucket:
            raise InvalidInput("--backup-s3-url must be http(s)://host[:port], with a bucket")
        self.url = url
        self.bucket = bucket
        self._keys = keys

    def __str__(self) -> str:
        return f"s3://{self.bucket} at {self.url}"

    def _client(self) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise BackupFailed(
                "backups to S3 need boto3: pip install 'temps[s3]' beside the daemon"
            ) from exc
        keys = self._keys()
        if keys is None:
            raise BackupFailed("no S3 keys: set them with `temps backup s3-login`")
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=keys[0],
            aws_secret_access_key=keys[1],
            region_name="us-east-1",  # what S3-compatible servers expect when they ignore it
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
        )

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404"):
                raise NotFound(f"{action}: not in the bucket {self.bucket}") from exc
            raise BackupFailed(f"{action} in {self}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise BackupFailed(f"{action} in {self}: {exc}") from exc

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[IO[bytes]]:
        from boto3.s3.transfer import TransferConfig

        client = self._client()
        with tempfile.TemporaryFile(prefix="temps-backup-") as spool:
            yield spool
            spool.flush()
            spool.seek(0)
            chunks = TransferConfig(multipart_chunksize=PART_BYTES)
            with self._errors(f"store {key}"):
                client.upload_fileobj(spool, self.bucket, key, Config=chunks)

    @contextlib.contextmanager
    def reading(self, key: str) -> Iterator[IO[bytes]]:
        client = self._client()
        with self._errors(f"read {key}"):
            answer = client.get_object(Bucket=self.bucket, Key=key)
        body = answer["Body"]
        try:
            with self._errors(f"read {key}"):
                yield body
        finally:
            body.close()

    def remove(self, prefix: str) -> None:
        client = self._client()
        with self._errors(f"remove {prefix}"):
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{prefix}/"
            )
            for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
