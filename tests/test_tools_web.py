"""The web reader against a local HTTP server on 127.0.0.1 (the only address any test reaches):
allow-list and redirects, byte/time caps, content types, encodings, passages whose byte spans
re-derive their text, provenance, and quote checks from stored raw bytes."""
import hashlib
import html.parser
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from neuro_lib.tools.web import PageStore, WebReader, extract_passages, render, verify_quote

PAGE = ("<!doctype html><html><head><title>Tiny &amp; page</title><style>p {color: red}</style>"
        "<script>var s = '<p>not text</p>';</script></head><body><h1>Caf\u00e9 notes</h1>"
        "<p>The <b>quick</b> brown fox jumps over the lazy dog. Five &lt; six &eacute;&#233;.</p>"
        "<ul><li>first item</li><li>second <i>item</i></li></ul><!-- hidden comment -->"
        "<div>outer <p>inner paragraph</p> tail</div><p>unclosed<br>line</body></html>").encode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, body: bytes, ctype="text/html; charset=utf-8", status=200, length=True):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        port = self.server.server_address[1]
        routes = {
            "/page": lambda: self.send(PAGE),
            "/latin1": lambda: self.send("<p>Gar\u00e7on cr\u00e8me</p>".encode("latin-1"), "text/html; charset=iso-8859-1"),
            "/meta": lambda: self.send(b'<meta charset="iso-8859-1"><p>na\xefve</p>', "text/html"),
            "/unknown-charset": lambda: self.send("<p>caf\u00e9</p>".encode(), "text/html; charset=x-no-such"),
            "/base64-charset": lambda: self.send("<p>caf\u00e9</p>".encode(), "text/html; charset=base64"),
            "/idna-meta": lambda: self.send('<meta charset="idna"><p>caf\u00e9</p>'.encode() + b"<p>\xff</p>",
                                            "text/html"),
            "/bad-utf8": lambda: self.send(b"<p>ok \xff\xfe broken</p>"),
            "/text": lambda: self.send(b"first para\nstill first\n\nsecond para\n", "text/plain"),
            "/json": lambda: self.send(b'{"a": 1}', "application/json"),
            "/big": lambda: self.send(b"<p>" + b"x" * 5000 + b"</p>"),
            "/big-chunked": lambda: self.send(b"<p>" + b"x" * 5000 + b"</p>", length=False),
            "/missing": lambda: self.send(b"<p>nope</p>", status=404),
            "/redirect-ok": lambda: self.redirect("/page"),
            "/redirect-chain": lambda: self.redirect("/redirect-ok"),
            "/redirect-out": lambda: self.redirect(f"http://localhost:{port}/page"),
            "/redirect-loop": lambda: self.redirect("/redirect-loop"),
        }
        if self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"<p>drip</p>")
                self.wfile.flush()
                time.sleep(0.1)
            return
        routes.get(self.path, lambda: self.send(b"no route", status=404))()

    def redirect(self, where):
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def reader(**kw):
    return WebReader(allow=["127.0.0.1"], **{"max_bytes": 4096, "timeout_s": 2.0, **kw})


def test_page_passages_spans_and_provenance(server, tmp_path):
    r = reader(store=tmp_path).call({"url": server + "/page"})
    assert r.ok, r.error
    texts = [p["text"] for p in r.value["passages"]]
    assert texts == ["Tiny & page", "Caf\u00e9 notes", "The quick brown fox jumps over the lazy dog. Five < six \u00e9\u00e9.",
                     "first item", "second item", "outer", "inner paragraph", "tail", "unclosed line"]
    for p in r.value["passages"]:  # each span, parsed on its own, gives its passage back
        a, b = p["span"]
        assert render(PAGE[a:b]) == p["text"]
    prov = r.provenance
    assert prov["requested_url"] == prov["final_url"] == server + "/page" and prov["status"] == 200
    assert prov["bytes"] == len(PAGE) and prov["sha256"] == hashlib.sha256(PAGE).hexdigest()
    assert prov["content_type"].startswith("text/html") and prov["fetched_at"].endswith("+00:00")
    # a cited quote is re-derived from the stored raw bytes; a wrong quote, span or hash is caught
    raw = PageStore(tmp_path).get(prov["sha256"])
    span = r.value["passages"][2]["span"]
    assert verify_quote(raw, prov["sha256"], span, "quick brown fox")
    assert not verify_quote(raw, prov["sha256"], span, "quick red fox")
    assert not verify_quote(raw, prov["sha256"], r.value["passages"][3]["span"], "quick brown fox")
    assert not verify_quote(raw + b" ", prov["sha256"], span, "quick brown fox")


def test_extraction_agrees_with_the_stdlib_parser_on_words():
    class Words(html.parser.HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.words, self.skip = [], 0

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("script", "style")

        def handle_endtag(self, tag):
            self.skip -= tag in ("script", "style")

        def handle_data(self, data):
            if not self.skip:
                self.words += data.split()

    ref = Words()
    ref.feed(PAGE.decode())
    ours = " ".join(p["text"] for p in extract_passages(PAGE)).split()
    assert ours == ref.words


def test_redirects_are_rechecked(server):
    r = reader().call({"url": server + "/redirect-chain"})
    assert r.ok and r.provenance["final_url"] == server + "/page" and len(r.provenance["redirects"]) == 2
    r = reader().call({"url": server + "/redirect-out"})
    assert not r.ok and "'localhost' is not in the allow-list" in r.error
    r = reader().call({"url": server + "/redirect-loop"})
    assert not r.ok and "redirects" in r.error


def test_allow_list_and_schema(server):
    r = WebReader(allow=["example.org"]).call({"url": server + "/page"})
    assert not r.ok and "'127.0.0.1' is not in the allow-list" in r.error
    assert "invalid arguments" in reader().call({"url": "file:///etc/passwd"}).error
    r = reader().call({"url": "http://127.0.0.1@evil.example/"})  # userinfo is not the host
    assert not r.ok and "'evil.example' is not in the allow-list" in r.error
    assert "invalid arguments" in reader().call({"url": server, "x": 1}).error


@pytest.mark.parametrize("path,message", [("/big", "larger than the 4096-byte cap"),
                                          ("/big-chunked", "larger than the 4096-byte cap"),
                                          ("/json", "content type 'application/json'"),
                                          ("/slow", "longer than 1 s")])
def test_caps_and_content_types(server, path, message):
    t0 = time.monotonic()
    r = reader(timeout_s=1.0).call({"url": server + path})
    assert not r.ok and message in r.error, r.error
    assert time.monotonic() - t0 < 3.5


def test_http_errors_keep_provenance(server):
    r = reader().call({"url": server + "/missing"})
    assert not r.ok and "HTTP status 404" in r.error and r.provenance["status"] == 404


@pytest.mark.parametrize("path,text,undecodable", [("/latin1", "Gar\u00e7on cr\u00e8me", 0),
                                                   ("/meta", "na\u00efve", 0),
                                                   ("/bad-utf8", "ok \ufffd\ufffd broken", 2),
                                                   ("/unknown-charset", "caf\u00e9", 0),  # falls back to UTF-8
                                                   ("/base64-charset", "caf\u00e9", 0),  # not a text encoding
                                                   ("/idna-meta", "\ufffd", 1)])  # idna cannot replace
def test_encodings(server, path, text, undecodable):
    r = reader().call({"url": server + path})
    assert r.ok and r.value["passages"][-1]["text"] == text and r.value["undecodable"] == undecodable
    raw_span = r.value["passages"][-1]["span"]
    assert raw_span[1] > raw_span[0]


def test_plain_text_paragraphs(server):
    r = reader().call({"url": server + "/text"})
    assert r.ok and not r.value["html"]
    assert [p["text"] for p in r.value["passages"]] == ["first para still first", "second para"]
    raw = b"first para\nstill first\n\nsecond para\n"
    for p in r.value["passages"]:
        assert verify_quote(raw, r.provenance["sha256"], p["span"], p["text"], html_doc=False)
