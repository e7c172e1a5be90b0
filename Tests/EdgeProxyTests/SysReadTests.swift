// sysRead (EdgeIO/Syscall.swift) reads sockets with recv(2) and anything else
// with read(2): both answer bytes, end of stream and "would block" alike.
import Glibc
import Testing
import EdgeIO

@Suite struct SysReadTests {
    func check(_ r: Int32, _ w: Int32) {
        var buf = [UInt8](repeating: 0, count: 16)
        let sent: [UInt8] = Array("hello".utf8)
        #expect(sent.withUnsafeBytes { Glibc.write(w, $0.baseAddress, $0.count) } == 5)
        #expect(buf.withUnsafeMutableBytes { sysRead(r, $0.baseAddress!, $0.count) } == .bytes(5))
        #expect(Array(buf[0..<5]) == sent)
        _ = fcntl(r, F_SETFL, fcntl(r, F_GETFL) | O_NONBLOCK)
        #expect(buf.withUnsafeMutableBytes { sysRead(r, $0.baseAddress!, $0.count) } == .wouldBlock)
        close(w)
        #expect(buf.withUnsafeMutableBytes { sysRead(r, $0.baseAddress!, $0.count) } == .eof)
        close(r)
    }

    @Test func readsASocket() {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        check(fds[0], fds[1])
    }

    @Test func readsAPipe() {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        check(fds[0], fds[1])
    }
}
