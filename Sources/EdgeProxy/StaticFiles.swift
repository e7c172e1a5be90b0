// The directory origin: serves files under a root with Content-Type,
// Last-Modified, ETag, Range and conditional requests (RFC 9110 §13-§14).
// Files are read with pread in 64 KiB steps as the client drains, so a large
// file streams in bounded memory.
import Glibc
import EdgeHTTP
import EdgeIO
import EdgeCompress

struct StaticFile {
    var fd: Int32 = -1
    var offset: Int64 = 0
    var remaining: Int64 = 0
    mutating func close() {
        if fd >= 0 { sysClose(fd) }
        fd = -1
    }
}

enum MediaTypes {
    static let table: [String: StaticString] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "css": "text/css; charset=utf-8",
        "js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8", "json": "application/json",
        "txt": "text/plain; charset=utf-8", "xml": "application/xml", "svg": "image/svg+xml", "png": "image/png",
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "avif": "image/avif",
        "ico": "image/x-icon", "wasm": "application/wasm", "pdf": "application/pdf", "woff": "font/woff",
        "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf", "mp4": "video/mp4", "webm": "video/webm",
        "mp3": "audio/mpeg", "ogg": "audio/ogg", "zip": "application/zip", "gz": "application/gzip",
        "md": "text/markdown; charset=utf-8", "csv": "text/csv; charset=utf-8", "map": "application/json",
    ]

    static func forPath(_ path: [UInt8]) -> StaticString {
        var i = path.count - 1
        while i >= 0 && path[i] != 46 && path[i] != 47 { i -= 1 }
        guard i >= 0, path[i] == 46, i + 1 < path.count, path.count - i <= 8 else { return "application/octet-stream" }
        let ext = String(decoding: path[(i + 1)...].map { asciiLower($0) }, as: UTF8.self)
        return table[ext] ?? "application/octet-stream"
    }
}

extension Worker {
    /// Maps the normalized path to a file and starts the response.
    func serveFile(_ c: ClientConnection, root: DirectoryRoot, p: UnsafeRawBufferPointer) {
        // Decode the path fully for the file system. An encoded "/" or NUL, or
        // a dot-file segment (other than .well-known), is never served.
        var rel: [UInt8] = []
        rel.reserveCapacity(c.ex.pathLength)
        var refused = false
        var i = 0
        while i < c.ex.pathLength {
            var ch = c.ex.target[i]
            if ch == 37 && i + 2 < c.ex.pathLength {
                let hi = hexValue(c.ex.target[i + 1]), lo = hexValue(c.ex.target[i + 2])
                let v = hi < 0 || lo < 0 ? 256 : hi << 4 | lo
                if v == 0 || v == 47 || v > 255 { refused = true }
                ch = UInt8(truncatingIfNeeded: v)
                i += 2
            }
            rel.append(ch)
            i += 1
        }
        for (k, seg) in rel.split(separator: 47).enumerated() where seg.first == 46 {
            if !(k == 0 && seg.elementsEqual(".well-known".utf8)) { refused = true }
        }
        if refused { return fileError(c, 404) }
        // Relative to the root, opened beneath it: neither ".." nor a link leaves it.
        var path = Array(rel.drop { $0 == 47 })
        if path.isEmpty || rel.last == 47 { path += Array(root.index.utf8) }
        path.append(0)
        let fd = openBeneath(root, path)
        if fd < 0 { return fileError(c, errno == EACCES ? 403 : 404) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { sysClose(fd); return fileError(c, 404) }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            sysClose(fd)
            // Like nginx: a directory without the trailing slash is redirected to it.
            return redirectToSlash(c)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { sysClose(fd); return fileError(c, 404) }

        var size = Int64(st.st_size)
        let mtime = Int64(st.st_mtim.tv_sec)
        let type = MediaTypes.forPath(path.dropLast().map { $0 })
        // Compression: a precompressed sibling (x.js.br, x.js.gz) when there is one,
        // else compressed while it streams. The ETag names the coding.
        let (coding, sibling, siblingSize, varyAE) = chooseFileCoding(c, root: root, path: path, type: type, size: size)
        var fileFD = fd
        if sibling >= 0 { sysClose(fd); fileFD = sibling; size = siblingSize }
        let dynamic = coding != .identity && sibling < 0
        // ETag: "<mtime hex>-<size hex>[-coding]", strong.
        let etag = IOBuffer(capacity: 48)
        etag.append(byte: 34); etag.append(hex: Int(mtime)); etag.append(byte: 45); etag.append(hex: Int(st.st_size))
        if coding != .identity { etag.append(byte: 45); etag.append(string: coding.token) }
        etag.append(byte: 34)

        var status = 200
        var rangeStart: Int64 = 0
        var rangeEnd: Int64 = size - 1
        // Conditionals, then Range / If-Range (EdgeHTTP.Preconditions, as for cache hits).
        func value(_ k: KnownField) -> String? {
            c.ex.head.fields.first { $0.known == k }.map { String(decoding: p[$0.valueStart..<$0.valueEnd], as: UTF8.self) }
        }
        switch Preconditions.evaluate(ifNoneMatch: value(.ifNoneMatch), ifModifiedSince: value(.ifModifiedSince),
                                      range: value(.range), ifRange: value(.ifRange),
                                      etag: String(decoding: etag.readView, as: UTF8.self), lastModified: mtime, size: size,
                                      rangeAllowed: c.ex.method == .get && coding == .identity, now: clock.now()) {
        case .full: break
        case .notModified: status = 304
        case .partial(let a, let b): status = 206; rangeStart = a; rangeEnd = b
        case .unsatisfiable: status = 416
        }

        let b = generatedHead(c, status)
        b.append("Last-Modified: ")
        HTTPDate.format(mtime, into: b)
        b.append("\r\nETag: ")
        b.append(etag.readView)
        b.append(coding == .identity ? "\r\nAccept-Ranges: bytes\r\n" : "\r\n")
        if varyAE { b.append("Vary: Accept-Encoding\r\n") }
        if coding != .identity && status != 304 {
            b.append("Content-Encoding: ")
            b.append(string: coding.token)
            b.append("\r\n")
        }
        if c.ex.peer.https, let t = c.ex.tenant { b.append(t.hstsLine) }
        b.append(c.ex.route!.response.addLines)
        var bodyLength: Int64 = 0
        var announced = BodyLength.none
        switch status {
        case 304:
            break
        case 416:
            b.append("Content-Range: bytes */")
            b.append(decimal: size)
            b.append("\r\n")
            announced = .length(0)
        default:
            b.append("Content-Type: ")
            b.append(type)
            b.append("\r\n")
            bodyLength = rangeEnd - rangeStart + 1
            if status == 206 {
                b.append("Content-Range: bytes ")
                b.append(decimal: rangeStart); b.append(byte: 45); b.append(decimal: rangeEnd)
                b.append(byte: 47); b.append(decimal: size)
                b.append("\r\n")
            }
            // Compressed as it is read: the length is not known yet.
            announced = dynamic ? .stream : .length(max(bodyLength, 0))
        }
        headEnd(c, b, body: announced, headOnly: c.ex.method == .head)
        if c.ex.method == .head || bodyLength <= 0 || (status != 200 && dynamic) {
            sysClose(fileFD)
            return finishExchange(c)
        }
        if dynamic {
            guard let cmp = c.ex.route?.compress, let codec = try? StreamCodec(encoding: coding, settings: cmp.settings) else {
                sysClose(fileFD)
                return abortClient(c)
            }
            c.ex.coder = BodyCoder(codec, .encode(coding))
        }
        c.ex.file = StaticFile(fd: fileFD, offset: rangeStart, remaining: bodyLength)
        c.phase = .file
        pumpFile(c)
    }

    /// The coding for a file on a compressing route: which one, and a
    /// precompressed sibling's descriptor and size when one exists (else -1);
    /// `vary` when the answer depends on Accept-Encoding.
    func chooseFileCoding(_ c: ClientConnection, root: DirectoryRoot, path: [UInt8], type: StaticString, size: Int64)
        -> (ContentCoding, sibling: Int32, siblingSize: Int64, vary: Bool) {
        guard let cmp = c.ex.route?.compress, !c.ex.rangeRequested, c.ex.method == .get || c.ex.method == .head,
              cmp.compressible(type.description) else { return (.identity, -1, 0, false) }
        let w = AcceptEncoding.weights(c.ex.acceptEncoding)
        // Codings the client takes, best first (ties: the server's order).
        let ranked = cmp.offered.filter { $0 != .identity && w[$0] > 0 }.sorted { w[$0] > w[$1] }
        for coding in ranked where w[coding] >= w[.identity] {
            var sib = Array(path.dropLast()) + Array((coding == .br ? ".br" : ".gz").utf8)
            sib.append(0)
            let fd = openBeneath(root, sib)
            guard fd >= 0 else { continue }
            var st = stat()
            if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG { return (coding, fd, Int64(st.st_size), true) }
            sysClose(fd)
        }
        if size >= cmp.minBytes, let best = ranked.first, w[best] >= w[.identity] { return (best, -1, 0, true) }
        return (.identity, -1, 0, size >= cmp.minBytes)
    }

    /// Opens a NUL-terminated path relative to the root, never resolving outside it.
    func openBeneath(_ root: DirectoryRoot, _ path: [UInt8]) -> Int32 {
        path.withUnsafeBufferPointer {
            sysOpenBeneath(root.fd, UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), flags: O_RDONLY | O_NONBLOCK,
                           allowLinks: root.symlinksInside)
        }
    }

    func fileError(_ c: ClientConnection, _ status: Int) {
        respondError(c, status)
    }

    func redirectToSlash(_ c: ClientConnection) {
        let b = generatedHead(c, 301)
        b.append("Location: ")
        // The normalized path as the client addressed it (the stripped prefix put
        // back), plus "/", then the query. Never the raw target, and never
        // protocol-relative: a run of leading slashes becomes one, so
        // `//evil.example/../sub` cannot send the client to another host.
        var path: [UInt8] = []
        if let r = c.ex.route, r.stripPrefix { path += r.prefix.last == 47 ? r.prefix.dropLast() : r.prefix[...] }
        path += c.ex.target[0..<c.ex.pathLength]
        b.append(byte: 47)
        b.append(Array(path.drop { $0 == 47 || $0 == 92 }))
        b.append(byte: 47)
        b.append(Array(c.ex.target[c.ex.pathLength...]))
        b.append("\r\n")
        headEnd(c, b, body: .length(0))
        finishExchange(c)
    }

    /// Reads the file into the client's buffer and writes it out, until the
    /// socket pushes back (then EPOLLOUT resumes it) or the file is done.
    func pumpFile(_ c: ClientConnection) {
        let b = c.outBuf!
        while !c.closed {
            while c.ex.file.remaining > 0 && sendRoom(c) > 0 {
                let want = Int(min(c.ex.file.remaining, 65536))
                // Compressing: read into a scratch buffer and feed the codec.
                let into = c.ex.coder == nil ? b : fileScratch
                into.reserve(want)
                let r = pread(c.ex.file.fd, into.writePointer, want, off_t(c.ex.file.offset))
                if r <= 0 {
                    if r < 0 && errno == EINTR { continue }
                    return abortClient(c)   // the file shrank or failed under us
                }
                c.ex.file.offset += Int64(r)
                c.ex.file.remaining -= Int64(r)
                if let coder = c.ex.coder {
                    let ok = feedCoder(c, coder, UnsafeRawBufferPointer(start: into.writePointer, count: r), finish: false, b)
                    if !ok { return abortClient(c) }
                } else {
                    b.writeIndex += r
                }
            }
            if c.ex.file.remaining == 0 {
                c.ex.file.close()
                if let coder = c.ex.coder, !finishCoder(c, coder, b) { return abortClient(c) }
                return finishExchange(c)
            }
            flushClient(c)
            if !c.writable { return }
        }
    }
}
