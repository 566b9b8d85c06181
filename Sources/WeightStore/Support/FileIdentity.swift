#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether two paths are the same file, by device and inode after following links: comparing
/// path strings misses `pack link.npz -o small.npz` when link.npz points at small.npz, and
/// the output would replace its own input.
public enum FileIdentity {
    public static func same(_ a: String, _ b: String) -> Bool {
        var x = stat(), y = stat()
        guard stat(a, &x) == 0, stat(b, &y) == 0 else { return false }
        return x.st_dev == y.st_dev && x.st_ino == y.st_ino
    }
}
