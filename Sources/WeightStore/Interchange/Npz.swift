import CZlib
import LazyTensor

/// NumPy's .npz: a zip archive of .npy members. Read: stored members are parsed in place in
/// the mapping; deflated members are inflated into memory one at a time (zip gives no way to
/// map them). Zip64 sizes and offsets are understood. Written: stored members, zip64 not
/// needed below 4 GiB (larger members are refused with a pointer to .safetensors).
public enum Npz {
    static func read(path: String, policy: HalfPolicy) throws -> InputBundle {
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        func fail(_ reason: String) -> InterchangeError { InterchangeError(path, reason) }
        guard bytes.count >= 22 else { throw fail("not a zip (.npz) file: \(bytes.count) bytes is too small") }

        // The end-of-central-directory record is in the last 64 KiB + 22 bytes.
        var eocd = -1
        var position = bytes.count - 22
        while position >= max(0, bytes.count - 22 - 65535) {
            if bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self) == 0x0605_4B50 { eocd = position; break }
            position -= 1
        }
        guard eocd >= 0 else { throw fail("not a zip (.npz) file: no end-of-central-directory record") }
        var c = ByteCursor(bytes, at: eocd + 4)
        let disk = c.read(UInt16.self)!, directoryDisk = c.read(UInt16.self)!
        _ = c.read(UInt16.self)!
        var entryCount = UInt64(c.read(UInt16.self)!)
        var directorySize = UInt64(c.read(UInt32.self)!)
        var directoryOffset = UInt64(c.read(UInt32.self)!)
        guard disk == 0 || disk == 0xFFFF, directoryDisk == 0 || directoryDisk == 0xFFFF else {
            throw fail("multi-disk zip archives are not read")
        }
        // Where the central directory must end: at the zip64 end record if there is one.
        var directoryEnd = eocd
        // Zip64: a saturated field defers to the zip64 end record that the locator just before
        // the EOCD points at. Without a locator the 32-bit fields are taken as they are (zipfile
        // does the same), and the directory checks below decide.
        if entryCount == 0xFFFF || directoryOffset == 0xFFFF_FFFF || directorySize == 0xFFFF_FFFF,
           eocd >= 20, bytes.loadUnaligned(fromByteOffset: eocd - 20, as: UInt32.self) == 0x0706_4B50 {
            var l = ByteCursor(bytes, at: eocd - 20 + 8)
            let declared = l.read(UInt64.self)!
            // The 56-byte zip64 end record must lie wholly before the locator.
            let lastStart = eocd - 20 - 56
            guard lastStart >= 0, declared <= UInt64(lastStart) else {
                throw fail("zip64 end record offset \(declared) is outside the file")
            }
            let z = Int(declared)
            guard bytes.loadUnaligned(fromByteOffset: z, as: UInt32.self) == 0x0606_4B50 else {
                throw fail("zip64 end record is damaged")
            }
            var zc = ByteCursor(bytes, at: z + 24)
            entryCount = zc.read(UInt64.self)!
            _ = zc.read(UInt64.self)!
            directorySize = zc.read(UInt64.self)!
            directoryOffset = zc.read(UInt64.self)!
            directoryEnd = z
        }
        // The directory is read by its own extent, not by the end record's count: an archive
        // whose end record says "0 entries" over a full directory is not empty.
        guard directoryOffset <= UInt64(directoryEnd), directorySize == UInt64(directoryEnd) - directoryOffset else {
            throw fail("central directory (offset \(directoryOffset), \(directorySize) bytes) does not end where the end record starts")
        }
        let directory = UnsafeRawBufferPointer(rebasing: bytes[Int(directoryOffset)..<directoryEnd])
        var d = ByteCursor(directory)
        var bundle = InputBundle()
        var names = Set<[UInt8]>()
        var walked: UInt64 = 0
        while d.remaining > 0 {
            guard d.read(UInt32.self) == 0x0201_4B50, d.skip(4), let flags = d.read(UInt16.self),
                  let method = d.read(UInt16.self), d.skip(4), let crc = d.read(UInt32.self), let compressed32 = d.read(UInt32.self),
                  let uncompressed32 = d.read(UInt32.self), let nameLength = d.read(UInt16.self),
                  let extraLength = d.read(UInt16.self), let commentLength = d.read(UInt16.self), d.skip(8),
                  let localOffset32 = d.read(UInt32.self), let nameBytes = d.readBytes(Int(nameLength)),
                  let extra = d.readBytes(Int(extraLength)), d.skip(Int(commentLength))
            else { throw fail("zip central directory is damaged (entry \(walked))") }
            walked += 1
            let memberName = String(decoding: nameBytes, as: UTF8.self)
            guard flags & 1 == 0 else { throw fail("member '\(memberName)' is encrypted; encrypted zip members are not read") }
            guard names.insert(Array(nameBytes)).inserted else { throw fail("member '\(memberName)' appears twice") }
            var compressed = UInt64(compressed32), uncompressed = UInt64(uncompressed32)
            var localOffset = UInt64(localOffset32)
            // Zip64 extended information: only the fields that overflowed are present, in order.
            var e = ByteCursor(extra)
            while e.remaining >= 4 {
                let tag = e.read(UInt16.self)!, size = Int(e.read(UInt16.self)!)
                guard let field = e.readBytes(size) else { throw fail("member '\(memberName)': extra field is truncated") }
                if tag == 1 {
                    var f = ByteCursor(field)
                    if uncompressed32 == 0xFFFF_FFFF { uncompressed = f.read(UInt64.self) ?? uncompressed }
                    if compressed32 == 0xFFFF_FFFF { compressed = f.read(UInt64.self) ?? compressed }
                    if localOffset32 == 0xFFFF_FFFF { localOffset = f.read(UInt64.self) ?? localOffset }
                }
            }
            guard memberName.hasSuffix(".npy") else {
                bundle.notes.append("skipped '\(memberName)' in \(path): not a .npy member")
                continue
            }
            let name = String(memberName.dropLast(4))
            guard localOffset < directoryOffset else { throw fail("member '\(memberName)' starts outside the archive's data") }
            var l = ByteCursor(bytes, at: Int(localOffset))
            guard l.read(UInt32.self) == 0x0403_4B50, l.skip(22),
                  let localName = l.read(UInt16.self), let localExtra = l.read(UInt16.self),
                  let localNameBytes = l.readBytes(Int(localName)), l.skip(Int(localExtra)),
                  compressed <= directoryOffset, UInt64(l.position) <= directoryOffset - compressed
            else { throw fail("member '\(memberName)' is damaged or truncated") }
            guard Array(localNameBytes) == Array(nameBytes) else { throw fail("member '\(memberName)': local header names another file") }
            let data = UnsafeRawBufferPointer(rebasing: bytes[l.position..<l.position + Int(compressed)])
            let member = "\(path)[\(memberName)]"
            switch method {
            case 0:
                guard compressed == uncompressed else { throw fail("member '\(memberName)' is stored but its sizes differ") }
                // A flipped byte in a stored member would otherwise become a value, and the new
                // .wpk's checksum would vouch for it.
                guard crc32(data) == crc else { throw InterchangeError(member, "CRC-32 mismatch: the member is damaged") }
                bundle.tensors += try Npy.read(bytes: data, owner: file, path: member, name: name, policy: policy).tensors
            case 8:
                // Deflate expands at most about 1032:1; a larger claim is a lie, refused before
                // any memory is set aside for it.
                let (bound, o) = compressed.multipliedReportingOverflow(by: 1032)
                guard !o, uncompressed <= bound + 64 else {
                    throw InterchangeError(member, "claims \(uncompressed) bytes from \(compressed) deflated bytes, more than deflate can produce")
                }
                guard uncompressed <= UInt64(MemoryLimit.physicalBytes),
                      let block = Storage(tryAllocatingByteCount: Int(uncompressed)) else {
                    throw InterchangeError(member, "inflating needs \(uncompressed) bytes, more than this machine can provide")
                }
                let out = UnsafeMutableRawBufferPointer(start: block.baseAddress, count: Int(uncompressed))
                try inflate(data, into: out, member: member)
                guard crc32(UnsafeRawBufferPointer(out)) == crc else { throw InterchangeError(member, "CRC-32 mismatch: the member is damaged") }
                bundle.tensors += try Npy.read(bytes: UnsafeRawBufferPointer(out), owner: block, path: member,
                                               name: name, policy: policy).tensors
            default:
                throw fail("member '\(memberName)' uses zip method \(method); only stored and deflated are read")
            }
        }
        if walked != entryCount {
            // Python's zipfile (and so NumPy) reads the directory by its extent and ignores the
            // count; so does wpack, but it says so.
            bundle.notes.append("\(path): the zip end record counts \(entryCount) members, its central directory holds \(walked); read them all")
        }
        return bundle
    }

    /// Inflates raw deflate data into exactly `output.count` bytes, in steps that fit zlib's
    /// 32-bit counters, so members past 4 GiB inflate as well.
    private static func inflate(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                                member: String) throws {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw InterchangeError(member, "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        let step = 1 << 30
        var consumed = 0, produced = 0
        var status = Z_OK
        while status == Z_OK {
            let inChunk = min(step, input.count - consumed), outChunk = min(step, output.count - produced)
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress.map { $0.assumingMemoryBound(to: Bytef.self) + consumed })
            stream.avail_in = uInt(inChunk)
            stream.next_out = output.baseAddress.map { $0.assumingMemoryBound(to: Bytef.self) + produced }
            stream.avail_out = uInt(outChunk)
            status = CZlib.inflate(&stream, Z_NO_FLUSH)
            consumed += inChunk - Int(stream.avail_in)
            produced += outChunk - Int(stream.avail_out)
            if status == Z_OK && inChunk - Int(stream.avail_in) == 0 && outChunk - Int(stream.avail_out) == 0 { break }
        }
        guard status == Z_STREAM_END, produced == output.count, consumed == input.count else {
            throw InterchangeError(member, status == Z_STREAM_END
                ? "deflated data decodes to \(produced) bytes, the directory says \(output.count)"
                : "deflated data is damaged (zlib status \(status))")
        }
    }

    static func crc32(_ bytes: UnsafeRawBufferPointer, _ running: UInt32 = 0) -> UInt32 {
        UInt32(CZlib.crc32_z(uLong(running), bytes.baseAddress?.assumingMemoryBound(to: Bytef.self), bytes.count))
    }

    /// Writes every tensor of `store` as a stored member `NAME.npy`.
    public static func write(_ store: WeightStore, to path: String) throws {
        let out = try FileOutput(path: path)
        do {
            var central = ByteSink()
            for info in store.infos {
                guard let dtype = info.interchangeDType else { throw InterchangeError(path, "tensor '\(info.name)' has an unknown dtype") }
                let header = try Npy.header(dtype: dtype, shape: info.shape)
                let size = UInt64(header.count + info.interchangeBytes)
                guard size < 0xFFFF_FFFF, out.position < 0xFFFF_FFFF else {
                    throw InterchangeError(path, "npz output is limited to 4 GiB; unpack to .safetensors instead")
                }
                let crc = try store.withInterchangeBytes(info) { raw in
                    header.withUnsafeBytes { crc32(raw, crc32($0)) }
                }
                let name = Array((info.name + ".npy").utf8)
                let offset = UInt32(out.position)
                var local = ByteSink()
                local.write(UInt32(0x0403_4B50)); local.write(UInt16(20)); local.write(UInt16(0x0800))
                local.write(UInt16(0)); local.write(UInt32(0x0021_0000)) // stored; 1980-01-01 00:00
                local.write(crc); local.write(UInt32(size)); local.write(UInt32(size))
                local.write(UInt16(name.count)); local.write(UInt16(0)); local.write(name)
                try out.write(local.bytes)
                try out.write(header)
                try store.withInterchangeBytes(info) { try out.write($0) }
                central.write(UInt32(0x0201_4B50)); central.write(UInt16(20)); central.write(UInt16(20))
                central.write(UInt16(0x0800)); central.write(UInt16(0)); central.write(UInt32(0x0021_0000))
                central.write(crc); central.write(UInt32(size)); central.write(UInt32(size))
                central.write(UInt16(name.count)); central.write(UInt16(0)); central.write(UInt16(0))
                central.write(UInt16(0)); central.write(UInt16(0)); central.write(UInt32(0o100644 << 16))
                central.write(offset); central.write(name)
            }
            let directoryOffset = out.position
            guard directoryOffset + UInt64(central.count) < 0xFFFF_FFFF, store.infos.count < 0xFFFF else {
                throw InterchangeError(path, "npz output is limited to 4 GiB and 65535 arrays; unpack to .safetensors instead")
            }
            try out.write(central.bytes)
            var end = ByteSink()
            end.write(UInt32(0x0605_4B50)); end.write(UInt16(0)); end.write(UInt16(0))
            end.write(UInt16(store.infos.count)); end.write(UInt16(store.infos.count))
            end.write(UInt32(central.count)); end.write(UInt32(directoryOffset)); end.write(UInt16(0))
            try out.write(end.bytes)
            // Bytes read from a file changed in place would be written as if they were its own.
            try store.checkUnchanged()
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
    }
}
