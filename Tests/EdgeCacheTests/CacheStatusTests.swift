import Testing
import EdgeHTTP
@testable import EdgeCache

@Suite(.timeLimit(.minutes(3))) struct CacheStatusTests {
    func text(_ s: CacheStatus) -> String {
        let b = IOBuffer(capacity: 64)
        s.append(to: b)
        return String(decoding: b.readView, as: UTF8.self)
    }

    @Test func serializesTheRFC9211Parameters() {
        #expect(text(CacheStatus()) == "fwd=bypass")
        #expect(text(CacheStatus(.hit)) == "hit")
        #expect(text(CacheStatus(.hit, .staleWhileRevalidate)) == "hit; detail=stale-while-revalidate")
        var miss = CacheStatus(.uriMiss)
        miss.fwdStatus = 200
        miss.stored = true
        #expect(text(miss) == "fwd=uri-miss; fwd-status=200; stored")
        var pass = CacheStatus(.varyMiss, .pass)
        pass.fwdStatus = 404
        #expect(text(pass) == "fwd=vary-miss; fwd-status=404; detail=pass")
        #expect(text(CacheStatus(.stale, .backgroundRefresh)) == "fwd=stale; detail=background-refresh")
        #expect(text(CacheStatus(.miss)) == "fwd=miss")
    }
}
