#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The most memory a reader may ask for on behalf of a file: a size field beyond it is refused
/// before allocating, since the allocation could only fail or push the machine into swap.
enum MemoryLimit {
    /// Physical memory, or the address-space limit when one is set lower (ulimit -v).
    static let physicalBytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        var limit = pages > 0 && pageSize > 0 ? pages.multipliedReportingOverflow(by: pageSize).partialValue : Int.max
        var address = rlimit()
        if getrlimit(RLIMIT_AS_VALUE, &address) == 0, address.rlim_cur != rlim_t.max {
            limit = min(limit, Int(clamping: address.rlim_cur))
        }
        return limit
    }()
}

#if canImport(Glibc)
private let RLIMIT_AS_VALUE = __rlimit_resource_t(RLIMIT_AS.rawValue)
#else
private let RLIMIT_AS_VALUE = RLIMIT_AS
#endif
