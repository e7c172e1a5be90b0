// The WebSocket opening handshake as a proxy sees it (RFC 6455 §4.1, §4.2.2;
// RFC 9110 §7.8 Upgrade): which requests ask to become a tunnel, and which
// origin answers accept. Pure: field offsets into `p`, no I/O. The key and
// accept values are the origin's to check; edge relays them untouched.

public enum WebSocketHandshake {
    /// A request asks for a WebSocket when it is an HTTP/1.1 GET without a body
    /// whose Upgrade field lists `websocket` and whose Connection field lists
    /// `upgrade`. Anything else (other tokens, HTTP/1.0, a body) is an ordinary
    /// request: its Upgrade field is dropped like any hop-by-hop field.
    public static func isRequest(_ p: UnsafeRawBufferPointer, _ head: RequestHead) -> Bool {
        guard head.method == .get, head.minorVersion == 1, case .none = head.framing else { return false }
        return lists(p, head.fields, .connection, "upgrade") && lists(p, head.fields, .upgrade, "websocket")
    }

    /// An origin accepts when it answers 101 with `Upgrade: websocket` and
    /// `Connection: upgrade`; a 101 without them is a malformed answer.
    public static func isAccept(_ p: UnsafeRawBufferPointer, _ head: ResponseHead) -> Bool {
        head.status == 101 && lists(p, head.fields, .connection, "upgrade") && lists(p, head.fields, .upgrade, "websocket")
    }

    /// Whether any field of kind `known` has `token` (case-insensitively) in its list.
    static func lists(_ p: UnsafeRawBufferPointer, _ fields: [Field], _ known: KnownField, _ token: StaticString) -> Bool {
        for f in fields where f.known == known {
            var found = false
            forEachListElement(p, f.valueStart, f.valueEnd) { s, e in
                if !found && equalsLowercase(p, s, e, token) { found = true }
            }
            if found { return true }
        }
        return false
    }
}
