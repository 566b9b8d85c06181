import Foundation
import LazyTensor
import Testing
@testable import WeightStore

/// int32 and int64 arrays load as integer tensors, exactly, and write back as NumPy reads them.
@Suite struct IntegerArrayTests {
    @Test(arguments: [DType.int64, .int32])
    func npyRoundTrip(dtype: DType) throws {
        let folder = TemporaryFolder()
        let path = folder.file("ids.npy")
        let ids = Tensor(shape: [2, 3], integers: [101, 7592, 2088, 102, 0, dtype == .int64 ? 1 << 40 : -5], dtype: dtype)
        try ArrayFile.writeNpy(ids.transposed(), to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let header = String(decoding: bytes.prefix(80), as: UTF8.self)
        #expect(header.contains(dtype == .int64 ? "'<i8'" : "'<i4'") && header.contains("(3, 2)"))
        let back = try ArrayFile.readNpy(path: path)
        #expect(back.dtype == dtype && back.shape == [3, 2])
        #expect(back.integers == ids.transposed().integers)
    }

    /// A big-endian int64 .npy (NumPy's '>i8') reads as the same numbers.
    @Test func bigEndianIntegers() throws {
        let folder = TemporaryFolder()
        let path = folder.file("be.npy")
        var header = "{'descr': '>i8', 'fortran_order': False, 'shape': (2,), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        for v: Int64 in [258, -2] { withUnsafeBytes(of: v.bigEndian) { bytes += Array($0) } }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try ArrayFile.readNpy(path: path).integers == [258, -2])
    }
}
