import Testing
@testable import EdgeHTTP

@Suite struct WebSocketHandshakeTests {
    func request(_ text: String) -> Bool {
        let (r, head) = parseRequestEverySplit(text)
        guard case .complete = r else { Issue.record("did not parse: \(text.debugDescription)"); return false }
        return Array(text.utf8).withUnsafeBytes { WebSocketHandshake.isRequest($0, head) }
    }

    func response(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var h = ResponseHead()
        var s = HeadScan()
        return bytes.withUnsafeBytes { p in
            guard case .complete = HeadParser.parseResponse(p, limits: HeadLimits(), into: &h, scan: &s) else { return false }
            return WebSocketHandshake.isAccept(p, h)
        }
    }

    @Test func upgradeRequestsAreRecognized() {
        #expect(request("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
        // Tokens are case-insensitive list elements; fields may repeat.
        #expect(request("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: foo/1, WebSocket\r\nConnection: keep-alive, upgrade\r\n\r\n"))
        #expect(request("GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
    }

    @Test func otherRequestsAreOrdinary() {
        // No Connection: upgrade, another protocol, not GET, HTTP/1.0, a body.
        #expect(!request("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"))
        #expect(!request("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAA\r\n\r\n"))
        #expect(!request("POST / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n"))
        #expect(!request("GET / HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
        #expect(!request("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 5\r\n\r\n"))
        #expect(!request("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket2\r\nConnection: Upgrade\r\n\r\n"))
    }

    @Test func onlyAMatching101Accepts() {
        #expect(response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n"))
        #expect(!response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"))
        #expect(!response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"))
        #expect(!response("HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n"))
    }
}

/// Base64 and base64url (RFC 4648 §10's vectors; a WebSocket key is 16 bytes' worth).
@Suite struct Base64Tests {
    @Test(arguments: [("", "", ""), ("f", "Zg==", "Zg"), ("fo", "Zm8=", "Zm8"), ("foo", "Zm9v", "Zm9v"), ("foob", "Zm9vYg==", "Zm9vYg"),
                      ("fooba", "Zm9vYmE=", "Zm9vYmE"), ("foobar", "Zm9vYmFy", "Zm9vYmFy")])
    func rfc4648Vectors(_ input: String, _ padded: String, _ url: String) {
        #expect(String(decoding: base64(Array(input.utf8)), as: UTF8.self) == padded)
        #expect(String(decoding: base64(Array(input.utf8), url: true), as: UTF8.self) == url)
    }

    @Test func theAlphabetsDifferInTheirLastTwo() {
        #expect(String(decoding: base64([0xfb, 0xff, 0xbf]), as: UTF8.self) == "+/+/")
        #expect(String(decoding: base64([0xfb, 0xff, 0xbf], url: true), as: UTF8.self) == "-_-_")
        #expect(base64(Array(repeating: 7, count: 16)).count == 24, "a WebSocket key")
    }
}
