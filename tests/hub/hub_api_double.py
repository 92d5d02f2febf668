"""A test double of the Hugging Face Hub HTTP API, on 127.0.0.1 only, for the real ``huggingface_hub`` client.

It is NOT the Hub: it implements just the routes that repo creation, ``upload_folder`` (regular, non-LFS,
non-Xet uploads) and ``hf_hub_download`` use, keeps repos in memory, and records every request so tests
can assert what the client did (and did not) ask for. Bodies are capped and the server thread stops with
the fixture.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

MAX_BODY = 256 * 1024 * 1024


@dataclass
class RepoState:
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    private: bool = False


class HubApiDouble:
    def __init__(self) -> None:
        self.repos: dict[str, RepoState] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.timeout = 10
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "HubApiDouble":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> str:
        repo = self.repos.setdefault(repo_id, RepoState())
        repo.files.update(files)
        return self._commit(repo, "seed")

    def paths_requested(self) -> list[str]:
        return [path for _, path, _ in self.requests]

    @staticmethod
    def _commit(repo: RepoState, summary: str) -> str:
        digest = hashlib.sha1(f"{len(repo.commits)}:{summary}:{sorted(repo.files)}".encode()).hexdigest()
        repo.commits.append(digest)
        return digest

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    raise ValueError("body too large for the test double")
                return self.rfile.read(length) if length else b""

            def _send(self, status: int, payload=None, headers: dict[str, str] | None = None,
                      body: bytes | None = None) -> None:
                data = body if body is not None else (json.dumps(payload).encode() if payload is not None else b"")
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if body is None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _record(self) -> None:
                double.requests.append((self.command, unquote(self.path.split("?")[0]), dict(self.headers)))

            def do_POST(self) -> None:
                self._record()
                path = unquote(self.path.split("?")[0])
                body = self._body()
                if path == "/api/repos/create":
                    spec = json.loads(body)
                    repo_id = f"{spec['organization']}/{spec['name']}" if spec.get("organization") else spec["name"]
                    state = double.repos.setdefault(repo_id, RepoState())
                    state.private = spec.get("visibility") == "private" or bool(spec.get("private"))
                    return self._send(200, {"url": f"{double.url}/{repo_id}", "name": repo_id, "id": repo_id})
                if path == "/api/validate-yaml":
                    return self._send(200, {"errors": [], "warnings": []})
                if path.startswith("/api/models/"):
                    rest = path[len("/api/models/"):]
                    for verb in ("/preupload/", "/commit/", "/branch/"):
                        if verb in rest:
                            repo_id, revision = rest.split(verb, 1)
                            return self._repo_post(verb.strip("/"), repo_id, revision, body)
                return self._send(404, {"error": f"test double: no route POST {path}"})

            def _repo_post(self, verb: str, repo_id: str, revision: str, body: bytes) -> None:
                repo = double.repos.get(repo_id)
                if repo is None:
                    return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                if verb == "branch":
                    return self._send(200, {})
                if verb == "preupload":
                    files = json.loads(body)["files"]
                    return self._send(200, {"files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
                summary = ""
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "header":
                        summary = item["value"].get("summary", "")
                    elif item["key"] == "file":
                        value = item["value"]
                        repo.files[value["path"]] = base64.b64decode(value["content"])
                    else:
                        return self._send(400, {"error": f"test double: unsupported operation {item['key']}"})
                oid = double._commit(repo, summary)
                return self._send(200, {"success": True, "commitOid": oid,
                                        "commitUrl": f"{double.url}/{repo_id}/commit/{oid}"})

            def do_GET(self) -> None:
                self._record()
                path = unquote(self.path.split("?")[0])
                if path.startswith("/api/models/"):
                    repo_id = path[len("/api/models/"):].split("/revision/")[0]
                    repo = double.repos.get(repo_id)
                    if repo is None:
                        return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    return self._send(200, {"id": repo_id, "sha": repo.commits[-1] if repo.commits else None,
                                            "private": repo.private,
                                            "siblings": [{"rfilename": name} for name in sorted(repo.files)]})
                return self._resolve(path)

            def do_HEAD(self) -> None:
                self._record()
                return self._resolve(unquote(self.path.split("?")[0]))

            def _resolve(self, path: str) -> None:
                if "/resolve/" not in path:
                    return self._send(404, {"error": f"test double: no route {self.command} {path}"})
                repo_id, rest = path.lstrip("/").split("/resolve/", 1)
                _revision, filename = rest.split("/", 1)
                repo = double.repos.get(repo_id)
                if repo is None:
                    return self._send(401, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                commit = repo.commits[-1]
                if filename not in repo.files:
                    return self._send(404, {"error": "Entry not found"},
                                      {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit})
                data = repo.files[filename]
                etag = hashlib.sha256(data).hexdigest()  # what the Hub reports for LFS files
                return self._send(200, body=data, headers={"X-Repo-Commit": commit, "ETag": f'"{etag}"',
                                                           "Content-Type": "application/octet-stream"})

        return Handler
