"""--push-to-hub: upload the finished shards, manifest and card to a Hugging Face dataset repo.

The repo is created (or found) before any featurising, so a missing network or token fails in
one line at the start instead of after hours of work. The upload itself is huggingface_hub's
upload_folder, which skips files the repo already has with the same content.
"""

from __future__ import annotations

from pathlib import Path

from app.base.errors import UserError, first_line

UPLOADED = ["data/*.parquet", "manifest.json", "README.md"]


def _one_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {first_line(exc)}"


def check_repo(repo: str, private: bool = False) -> None:
    try:
        from huggingface_hub import HfApi

        HfApi().create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
    except Exception as exc:
        raise UserError(f"--push-to-hub {repo}: cannot reach or create the Hub dataset repo "
                        f"(offline, or no token with write access? `hf auth login`): {_one_line(exc)}") from exc


def push(out: Path, repo: str) -> str:
    try:
        from huggingface_hub import HfApi

        info = HfApi().upload_folder(repo_id=repo, repo_type="dataset", folder_path=str(out),
                                     allow_patterns=UPLOADED, commit_message="featurize: upload shards")
    except Exception as exc:
        raise UserError(f"--push-to-hub {repo}: upload failed: {_one_line(exc)}") from exc
    return str(getattr(info, "commit_url", info))
