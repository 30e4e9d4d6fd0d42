"""A web reader with provenance: fetch an http(s) page from allowed hosts, extract its readable
text as passages that each keep their byte span in the raw document, and record where it came from.

    reader = WebReader(allow=["docs.python.org"], store="data/cache/web")
    r = reader.call({"url": "https://docs.python.org/3/"})
    r.value["passages"][0]    # {"text": "...", "span": [start, end]}  bytes of the raw document
    r.provenance              # requested_url, final_url, redirects, fetched_at (UTC), status,
                              # content_type, bytes, sha256, encoding
    verify_quote(raw, sha256, span, quote, encoding)   # re-derives the quote from the stored raw bytes
    neuro tool fetch URL --allow HOST [--store DIR] [--json]

Fetching (httpx): only hosts in the allow-list (exact host names); redirects are followed by hand,
at most MAX_REDIRECTS, each target re-checked against the allow-list before it is requested; a byte
cap (Content-Length checked first, then the streamed body counted) and one time cap over the whole
fetch: connecting, TLS, the request, the response headers and the body, every redirect hop included.
httpx's own timeouts bound each socket operation, so a server sending a byte a second never trips
them; here every socket operation is given only the time left until one deadline (`_DeadlineBackend`,
an httpcore network backend), and the first one after it fails. Proxies named in the environment
are not used (a proxy's own transport would not share the deadline). Only the content types in
`content_types` are read.

Extraction (tree-sitter-html, a maintained incremental parser whose every node carries its byte
range in the input): text and character-reference leaves outside script, style, template and the
like, grouped by their nearest block element (p, li, h1, td, ...). A passage is a run of leaves
with the same block; its span runs from the first leaf's first byte to the last leaf's last byte.
Text is decoded with the page's charset (header, then <meta>, then UTF-8; undecodable bytes are
replaced and counted), entities unescaped, whitespace collapsed. `render(raw[span])` re-parses
the span on its own and gives the same text, which is how a quote is checked: the answer cites
(sha256, span), and the check hashes the stored raw bytes and re-derives the passage.

Tests: tests/test_tools_web.py, against a local HTTP server on 127.0.0.1 only.
"""
from __future__ import annotations

import codecs
import hashlib
import html
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
import tree_sitter
import tree_sitter_html

from neuro_lib.tools.base import Tool, ToolError, ToolResult

MAX_REDIRECTS = 5
SKIP_TAGS = {"script", "style", "template", "noscript", "svg", "math", "iframe", "object", "canvas", "select"}
BLOCK_TAGS = {"address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div",
              "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
              "h6", "header", "hr", "html", "legend", "li", "main", "nav", "ol", "option", "p", "pre", "section",
              "summary", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul"}
SKIP_NODES = {"script_element", "style_element", "comment", "doctype"}
LEAVES = {"text", "entity"}
_TAG = re.compile(rb"<[^>]*>")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)
_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_html.language()))


def _tag_name(element, src: bytes) -> str:
    for child in element.children:
        if child.type in ("start_tag", "self_closing_tag"):
            for c in child.children:
                if c.type == "tag_name":
                    return src[c.start_byte:c.end_byte].decode("ascii", "replace").lower()
    return ""


def _leaves(src: bytes) -> list[tuple[int, int, int]]:
    """(block id, start byte, end byte) of every text/entity leaf in document order."""
    out = []
    stack = [(_PARSER.parse(src).root_node, 0)]
    while stack:
        node, block = stack.pop()
        if node.type in SKIP_NODES:
            continue
        if node.type in LEAVES:
            out.append((block, node.start_byte, node.end_byte))
            continue
        if node.type == "element":
            name = _tag_name(node, src)
            if name in SKIP_TAGS:
                continue
            if name in BLOCK_TAGS:
                block = node.id
        stack.extend((c, block) for c in reversed(node.children))
    return out


def _join(src: bytes, leaves, encoding: str) -> str:
    """Text of consecutive leaves: decoded, entities unescaped, whitespace collapsed."""
    parts, prev_end = [], None
    for _, a, b in leaves:
        if prev_end is not None:
            gap = src[prev_end:a]
            if re.search(rb"<br\b", gap, re.I) or re.search(rb"\s", _TAG.sub(b"", gap)):
                parts.append(" ")
        parts.append(html.unescape(src[a:b].decode(encoding, errors="replace")))
        prev_end = b
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def undecodable(raw: bytes, encoding: str) -> int:
    """How many characters of raw could not be decoded (each became U+FFFD)."""
    try:
        raw.decode(encoding)
        return 0
    except UnicodeDecodeError:
        return raw.decode(encoding, errors="replace").count("\ufffd") - raw.decode(encoding, "ignore").count("\ufffd")


def extract_passages(raw: bytes, encoding: str = "utf-8") -> list[dict]:
    """Readable passages of an HTML document -> [{"text", "span": [start, end]}] (bytes of raw)."""
    passages, group = [], []
    for leaf in _leaves(raw) + [(None, 0, 0)]:
        if group and leaf[0] != group[-1][0]:
            text = _join(raw, group, encoding)
            if text:
                passages.append({"text": text, "span": [group[0][1], group[-1][2]]})
            group = []
        group.append(leaf)
    return passages


def text_passages(raw: bytes, encoding: str = "utf-8") -> list[dict]:
    """Plain text: one passage per blank-line-separated paragraph."""
    return [{"text": render(m.group(), encoding, html_doc=False), "span": [m.start(), m.end()]}
            for m in re.finditer(rb"\S(?:.*?\S)?(?=\s*(?:\n\s*\n|\Z))", raw, re.S)]


def render(fragment: bytes, encoding: str = "utf-8", html_doc: bool = True) -> str:
    """The text of a raw byte span, parsed on its own (what a quote is checked against)."""
    if not html_doc:
        return re.sub(r"\s+", " ", fragment.decode(encoding, errors="replace")).strip()
    return _join(fragment, _leaves(fragment), encoding)


def verify_quote(raw: bytes, sha256: str, span, quote: str, encoding: str = "utf-8", html_doc: bool = True) -> bool:
    """True if `raw` is the document with this sha256 and the text of raw[span] contains the quote."""
    if hashlib.sha256(raw).hexdigest() != sha256:
        return False
    start, end = span
    if not 0 <= start <= end <= len(raw):
        return False
    return re.sub(r"\s+", " ", quote).strip() in render(raw[start:end], encoding, html_doc)


class PageStore:
    """Raw documents on disk by sha256, so a cited (sha256, span) can be checked later."""

    def __init__(self, root):
        self.root = Path(root)

    def put(self, raw: bytes) -> str:
        sha = hashlib.sha256(raw).hexdigest()
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / sha
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(raw)
            tmp.replace(path)
        return sha

    def get(self, sha256: str) -> bytes:
        path = self.root / sha256
        if not re.fullmatch(r"[0-9a-f]{64}", sha256) or not path.exists():
            raise ToolError(f"no stored document with sha256 {sha256}")
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest() != sha256:
            raise ToolError(f"stored document {sha256} is corrupt")
        return raw


def _charset(content_type: str, raw: bytes) -> str:
    m = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", content_type, re.I)
    name = m.group(1) if m else None
    if name is None and "html" in content_type:
        m = _META_CHARSET.search(raw[:2048])
        name = m.group(1).decode("ascii") if m else None
    try:
        encoding = codecs.lookup(name or "utf-8").name
        raw.decode(encoding, "replace"), raw.decode(encoding, "ignore")  # as extract_passages and undecodable will
        return encoding
    except (LookupError, UnicodeError):
        # an unknown name, a codec that is not a text encoding (base64, rot13) or one that cannot replace bad
        # bytes (idna, punycode): read as UTF-8 and count what does not decode
        return "utf-8"


def _time_left(deadline: float, timeout: float | None, exc) -> float:
    """The smaller of an operation's own timeout and the time left; `exc` once the deadline has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise exc("the fetch's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write gets at most the time left until `deadline`."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float):
        self.inner, self.deadline = inner, deadline

    def _left(self, timeout: float | None, exc) -> float:
        return _time_left(self.deadline, timeout, exc)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> "_DeadlineStream":
        inner = self.inner.start_tls(ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self.deadline)

    def get_extra_info(self, info: str):
        return self.inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's blocking sockets, each operation bounded by one deadline for the whole fetch."""

    def __init__(self, deadline: float):
        self.inner, self.deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        left = _time_left(self.deadline, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self.inner.connect_tcp(host, port, left, local_address, socket_options), self.deadline)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        left = _time_left(self.deadline, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self.inner.connect_unix_socket(path, left, socket_options), self.deadline)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool that uses `_DeadlineBackend`."""

    def __init__(self, deadline: float):
        super().__init__()
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(),
                                             network_backend=_DeadlineBackend(deadline))


class WebReader(Tool):
    """Fetch an http(s) URL from an allow-listed host (redirects re-checked), within byte and time caps,
    and return its readable text as passages with byte spans, plus a provenance record (URLs, UTC time,
    status, content type, byte count, sha256)."""

    name = "fetch"
    schema = {
        "type": "object",
        "properties": {"url": {"type": "string", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://", "maxLength": 4096}},
        "required": ["url"],
        "additionalProperties": False,
    }

    def __init__(self, allow=(), max_bytes: int = 2_000_000, timeout_s: float = 10.0,
                 content_types=("text/html", "application/xhtml+xml", "text/plain"), store=None, transport=None):
        self.allow = {h.lower().strip() for h in allow}
        self.max_bytes, self.timeout_s = max_bytes, timeout_s
        self.content_types = tuple(content_types)
        self.store = PageStore(store) if store is not None else None
        self.transport = transport  # an httpx transport, for tests that must not touch a network

    def check_url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise ToolError(f"only http and https URLs are fetched, not {url!r}")
        host = (parts.hostname or "").lower()
        if host not in self.allow:
            raise ToolError(f"host {host!r} is not in the allow-list ({', '.join(sorted(self.allow)) or 'empty'})")
        return host

    def run(self, args: dict) -> ToolResult:
        requested = url = args["url"]
        self.check_url(url)
        deadline = time.monotonic() + self.timeout_s
        fetched_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        redirects = []
        transport = self.transport or _DeadlineTransport(deadline)  # tests may hand in a mock transport
        try:
            with httpx.Client(follow_redirects=False, timeout=self.timeout_s, transport=transport, trust_env=False,
                              headers={"User-Agent": "neuro_lib-webreader/0.1"}) as client:
                raw, status, content_type, url = self._fetch(client, url, redirects, deadline)
        except httpx.TimeoutException:
            raise ToolError(f"fetch took longer than {self.timeout_s:g} s") from None
        sha = hashlib.sha256(raw).hexdigest()

        encoding = _charset(content_type, raw)
        provenance = {"requested_url": requested, "final_url": url, "redirects": redirects, "fetched_at": fetched_at,
                      "status": status, "content_type": content_type, "bytes": len(raw), "sha256": sha,
                      "encoding": encoding}
        if self.store is not None:
            self.store.put(raw)
        if not 200 <= status < 300:
            return ToolResult(False, error=f"HTTP status {status} from {url}", provenance=provenance)
        is_html = "html" in content_type.lower()
        passages = extract_passages(raw, encoding) if is_html else text_passages(raw, encoding)
        value = {"passages": passages, "text": "\n".join(p["text"] for p in passages),
                 "undecodable": undecodable(raw, encoding),
                 "html": is_html}
        return ToolResult(True, value=value, provenance=provenance)

    def _fetch(self, client: httpx.Client, url: str, redirects: list, deadline: float):
        """-> (raw body, status, content type, final URL), following redirects by hand."""
        for _ in range(MAX_REDIRECTS + 1):
            if time.monotonic() > deadline:
                raise ToolError(f"fetch took longer than {self.timeout_s:g} s")
            with client.stream("GET", url) as resp:
                if resp.is_redirect:
                    target = urljoin(url, resp.headers.get("location", ""))
                    self.check_url(target)  # every hop re-checked before it is requested
                    redirects.append({"from": url, "to": target, "status": resp.status_code})
                    url = target
                    continue
                return self._read(resp, deadline), resp.status_code, resp.headers.get("content-type", ""), url
        raise ToolError(f"more than {MAX_REDIRECTS} redirects")

    def _read(self, resp: httpx.Response, deadline: float) -> bytes:
        ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if 200 <= resp.status_code < 300 and ctype not in self.content_types:
            raise ToolError(f"content type {ctype or 'missing'!r} is not one of {', '.join(self.content_types)}")
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise ToolError(f"body of {declared} bytes is larger than the {self.max_bytes}-byte cap")
        body = bytearray()
        for chunk in resp.iter_bytes():  # decoded (gzip etc.): the cap bounds what is kept
            body += chunk
            if len(body) > self.max_bytes:
                raise ToolError(f"body is larger than the {self.max_bytes}-byte cap")
            if time.monotonic() > deadline:
                raise ToolError(f"fetch took longer than {self.timeout_s:g} s")
        return bytes(body)
