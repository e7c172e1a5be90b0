// Files and paths for start, reload and the admin side (config files, state
// files, directories): plain POSIX calls, no Foundation. Never per request.
// Paths are handled as text (no symbolic link is resolved), as the config's
// relative names are: against the directory of the file that names them.
// (Glibc alone: the config and admin fuzzers compile this file with theirs.)
import Glibc

public enum Path {
    /// `path` as named in a file in `directory`: itself when absolute, else
    /// joined to the directory.
    public static func resolve(_ path: String, against directory: String) -> String {
        path.hasPrefix("/") ? path : join(directory, path)
    }

    /// `base` and `name` with one "/" between them.
    public static func join(_ base: String, _ name: String) -> String {
        if base.isEmpty { return name }
        if name.isEmpty { return base }
        return base.hasSuffix("/") ? base + name : base + "/" + name
    }

    /// The directory part: "/a/b/c.json" is "/a/b", "c.json" is "", "/c" is "/"
    /// (trailing slashes are not a component: "a/b/" is "a").
    public static func directory(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        guard let slash = p.lastIndex(of: "/") else { return "" }
        var d = p[..<slash]
        while d.count > 1 && d.hasSuffix("/") { d.removeLast() }
        return d.isEmpty ? "/" : String(d)
    }

    /// The last component: "/a/b.json" is "b.json".
    public static func lastComponent(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        guard let slash = p.lastIndex(of: "/"), p.count > 1 else { return String(p) }
        return String(p[p.index(after: slash)...])
    }

    /// A name without its extension: "b.json" is "b" (".json", a hidden file's name, stays).
    public static func deletingExtension(_ name: String) -> String {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }

    /// Empty and "." components dropped, ".." taken back lexically where it
    /// can be (an absolute path never goes above "/"), no trailing slash.
    public static func standardize(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var out: [Substring] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." {
                if let last = out.last, last != ".." { out.removeLast(); continue }
                if absolute { continue }
            }
            out.append(c)
        }
        let body = out.joined(separator: "/")
        if absolute { return "/" + body }
        return body.isEmpty ? "." : body
    }
}

public enum Files {
    /// The whole file, read with plain read(2) calls until its end; nil when it cannot be read.
    public static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { return nil }
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 { return out }
            if n < 0 { if errno == EINTR { continue }; return nil }
            out.append(contentsOf: buf[0..<n])
        }
    }

    /// The whole file as UTF-8 text; nil when it cannot be read or is not UTF-8.
    public static func readText(_ path: String) -> String? {
        read(path).flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// Writes `bytes` as the whole file (created with `mode`, or truncated). False on any failure.
    @discardableResult public static func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { return false }
        var off = 0
        let ok = bytes.withUnsafeBytes { b -> Bool in
            while off < b.count {
                let n = Glibc.write(fd, b.baseAddress! + off, b.count - off)
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
        return close(fd) == 0 && ok
    }

    /// Writes the file whole or not at all: to a temporary name beside it, then renamed over it.
    @discardableResult public static func replace(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) -> Bool {
        let tmp = path + ".tmp"
        guard write(tmp, bytes, mode: mode) else { unlink(tmp); return false }
        guard rename(tmp, path) == 0 else { unlink(tmp); return false }
        return true
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// A file this process may read (access(2), R_OK).
    public static func isReadable(_ path: String) -> Bool { access(path, R_OK) == 0 }

    /// A file or directory this process may write (access(2), W_OK).
    public static func isWritable(_ path: String) -> Bool { access(path, W_OK) == 0 }

    /// The names in a directory but "." and "..", unsorted; nil when it cannot be read.
    public static func list(_ directory: String) -> [String]? {
        guard let d = opendir(directory) else { return nil }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Makes `path` and any missing directory above it (mkdir -p); false
    /// (errno set) when one cannot be made.
    @discardableResult public static func makeDirectories(_ path: String, mode: mode_t = 0o755) -> Bool {
        if isDirectory(path) { return true }
        let parent = Path.directory(of: path)
        if !parent.isEmpty && parent != path && !makeDirectories(parent, mode: mode) { return false }
        if mkdir(path, mode) == 0 { return true }
        if errno == EEXIST && !isDirectory(path) { errno = ENOTDIR }
        return isDirectory(path)
    }

    /// Removes a file; false when it was not there or could not be removed.
    @discardableResult public static func remove(_ path: String) -> Bool { unlink(path) == 0 }
}

/// Writes a line to standard error whole (one write(2) where it fits).
public func writeStandardError(_ text: String) {
    var t = text
    t.withUTF8 { b in
        var off = 0
        while off < b.count {
            let n = Glibc.write(2, b.baseAddress! + off, b.count - off)
            if n < 0 { if errno == EINTR { continue }; return }
            off += n
        }
    }
}
