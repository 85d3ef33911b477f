using System.Buffers.Binary;
using System.Text;

namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// Extracts the large stored (uncompressed) entries of a zip while it is being received (issue 13): the bytes of such an
/// entry go straight to their file under the extraction folder, and the zip on disk gets a hole (a sparse range) of the
/// same length in their place, so its offsets, and so its other entries and central directory, stay valid. A 1 GB video
/// in a track package is then written once instead of twice (received, then unpacked).
///
/// It reads only the local file headers, in order, as the bytes stream by; anything it does not follow (a data
/// descriptor, ZIP64 sizes, encryption, an unexpected signature) ends the splitting and the rest is written to the zip
/// as is. Nothing it wrote is trusted: <see cref="PackageArchive.ExtractSafely"/> checks every entry against the central
/// directory (name, type, size) and refuses the archive when a split entry does not match.
/// </summary>
public sealed class ZipEntrySplitter : IDisposable
{
    /// <summary>Entries smaller than this are left in the zip (copying them costs nothing worth a file of its own).</summary>
    public const long DefaultMinEntryBytes = 16L * 1024 * 1024;
    private const uint LocalHeaderSignature = 0x04034b50;
    private const int LocalHeaderLength = 30;

    private readonly string _root;
    private readonly long _minEntryBytes;
    private readonly List<SplitEntry> _entries = new();
    private readonly MemoryStream _header = new();
    private Stream _zip = Stream.Null;
    private FileStream? _current;
    private long _position;
    /// <summary>Bytes left of the entry data being passed through or diverted; 0 while a header is read.</summary>
    private long _dataLeft;
    private bool _diverting;
    private bool _stopped;

    /// <param name="extractionRoot">Where <see cref="PackageArchive.ExtractSafely"/> will unpack the archive.</param>
    public ZipEntrySplitter(string extractionRoot, long minEntryBytes = DefaultMinEntryBytes)
    {
        _root = Path.GetFullPath(extractionRoot);
        _minEntryBytes = minEntryBytes;
    }

    /// <summary>An entry written to its own file: its name in the zip, the file, where its data starts in the zip, its length.</summary>
    public sealed record SplitEntry(string Name, string Path, long ZipOffset, long Length);

    /// <summary>The entries extracted while receiving (the last one may be incomplete until the zip is).</summary>
    public IReadOnlyList<SplitEntry> Entries => _entries;

    /// <summary>Bytes of the zip consumed so far (written to it or to a split entry).</summary>
    public long Position => _position;

    /// <summary>The zip file being received (the caller owns it).</summary>
    public void WriteTo(Stream zip) => _zip = zip;

    public void Write(byte[] buffer, int offset, int count)
    {
        while (count > 0)
        {
            int n;
            if (_stopped)
            {
                _zip.Write(buffer, offset, count);
                n = count;
            }
            else if (_dataLeft > 0)
            {
                n = (int)Math.Min(count, _dataLeft);
                if (_diverting)
                {
                    // A replay only walks past what the split file already holds.
                    if (_replaying is null) _current!.Write(buffer, offset, n);
                    else _current!.Seek(n, SeekOrigin.Current);
                    _zip.Seek(n, SeekOrigin.Current); // the hole that stands for these bytes
                }
                else _zip.Write(buffer, offset, n);
                _dataLeft -= n;
                if (_dataLeft == 0 && _diverting) EndDiverted();
            }
            else n = ReadHeader(buffer, offset, count);
            _position += n;
            offset += n;
            count -= n;
        }
    }

    /// <summary>Closes the entry file being written (a transfer that stops); the zip's length covers its hole.</summary>
    public void Flush()
    {
        _current?.Flush();
        if (_zip.CanSeek && _zip.Length < _position) _zip.SetLength(_position);
    }

    public void Dispose()
    {
        _current?.Dispose();
        _current = null;
    }

    /// <summary>
    /// Reads the bytes of the zip as they were sent (holes filled from the split files) from its start to
    /// <paramref name="length"/> into <paramref name="sink"/>, and leaves this splitter where it was at that byte, ready
    /// to continue (a resumed upload). The split entries must be those the earlier splitter made (<paramref name="earlier"/>).
    /// </summary>
    /// <param name="zip">The partial zip, readable and writable: read here, then written from <paramref name="length"/> on.</param>
    public void Replay(Stream zip, long length, IReadOnlyList<SplitEntry> earlier, Action<byte[], int, int> sink, CancellationToken cancellationToken)
    {
        var buffer = new byte[1 << 20];
        var realZip = zip;
        _zip = Stream.Null;
        _replaying = earlier;
        try
        {
            while (_position < length)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var want = (int)Math.Min(buffer.Length, length - _position);
                // Inside a split entry's range the bytes are in its file; elsewhere in the zip.
                var split = earlier.FirstOrDefault(e => _position >= e.ZipOffset && _position < e.ZipOffset + e.Length);
                int read;
                if (split is not null)
                {
                    want = (int)Math.Min(want, split.ZipOffset + split.Length - _position);
                    using var part = new FileStream(split.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                    part.Position = _position - split.ZipOffset;
                    read = ReadFull(part, buffer, want);
                }
                else
                {
                    var next = earlier.Where(e => e.ZipOffset > _position).Select(e => e.ZipOffset).DefaultIfEmpty(long.MaxValue).Min();
                    want = (int)Math.Min(want, next - _position);
                    zip.Position = _position;
                    read = ReadFull(zip, buffer, want);
                }
                if (read < want) throw new IOException($"The partial upload ends before byte {length}.");
                sink(buffer, 0, read);
                Write(buffer, 0, read);
            }
        }
        finally
        {
            _replaying = null;
            _zip = realZip;
        }
        if (_zip.CanSeek) { _zip.SetLength(length); _zip.Position = length; }
        // What a split file held beyond the resume point is sent again.
        _current?.SetLength(_current.Position);
    }

    private IReadOnlyList<SplitEntry>? _replaying;

    private static int ReadFull(Stream stream, byte[] buffer, int count)
    {
        var filled = 0;
        while (filled < count)
        {
            var n = stream.Read(buffer, filled, count - filled);
            if (n == 0) break;
            filled += n;
        }
        return filled;
    }

    /// <returns>How many bytes of the buffer the header took.</returns>
    private int ReadHeader(byte[] buffer, int offset, int count)
    {
        var needed = LocalHeaderLength;
        if (_header.Length >= LocalHeaderLength)
        {
            var fixedPart = _header.GetBuffer();
            needed += BinaryPrimitives.ReadUInt16LittleEndian(fixedPart.AsSpan(26)) + BinaryPrimitives.ReadUInt16LittleEndian(fixedPart.AsSpan(28));
        }
        var n = (int)Math.Min(count, needed - _header.Length);
        _header.Write(buffer, offset, n);
        _zip.Write(buffer, offset, n);
        if (_header.Length == LocalHeaderLength && needed == LocalHeaderLength)
        {
            var h = _header.GetBuffer().AsSpan(0, LocalHeaderLength);
            if (BinaryPrimitives.ReadUInt32LittleEndian(h) != LocalHeaderSignature) { Stop(); return n; }
            if (LocalHeaderLength + BinaryPrimitives.ReadUInt16LittleEndian(h.Slice(26)) + BinaryPrimitives.ReadUInt16LittleEndian(h.Slice(28)) > LocalHeaderLength)
                return n; // name and extra field follow
        }
        if (_header.Length < LocalHeaderLength || _header.Length < needed) return n;
        BeginData(_position + n);
        return n;
    }

    private void BeginData(long dataStart)
    {
        var h = _header.GetBuffer().AsSpan(0, (int)_header.Length);
        _header.SetLength(0);
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != LocalHeaderSignature) { Stop(); return; }
        var flags = BinaryPrimitives.ReadUInt16LittleEndian(h.Slice(6));
        var method = BinaryPrimitives.ReadUInt16LittleEndian(h.Slice(8));
        long compressed = BinaryPrimitives.ReadUInt32LittleEndian(h.Slice(18));
        long uncompressed = BinaryPrimitives.ReadUInt32LittleEndian(h.Slice(22));
        var nameLength = BinaryPrimitives.ReadUInt16LittleEndian(h.Slice(26));
        // Encrypted, sizes after the data (descriptor), or ZIP64 sizes: not followed further.
        if ((flags & 0x0001) != 0 || (flags & 0x0008) != 0 || compressed == uint.MaxValue || uncompressed == uint.MaxValue) { Stop(); return; }
        var rawName = h.Slice(LocalHeaderLength, nameLength);
        // Names other than UTF-8 (flag 11) or plain ASCII would need the zip's code page: left in the zip.
        var name = (flags & 0x0800) != 0 || !ContainsNonAscii(rawName) ? Encoding.UTF8.GetString(rawName.ToArray()) : null;
        _dataLeft = compressed;
        _diverting = compressed > 0 && method == 0 && compressed == uncompressed && compressed >= _minEntryBytes
            && name is not null && SafeTarget(name) is { } target && BeginDiverted(name, target, dataStart, compressed);
    }

    private static bool ContainsNonAscii(ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes) if (b >= 0x80) return true;
        return false;
    }

    private bool BeginDiverted(string name, string target, long dataStart, long length)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            // A replay (resumed upload) reopens the file it wrote and walks past its bytes; new entries start empty.
            var replayed = _replaying?.Any(e => e.ZipOffset == dataStart && e.Name == name) == true;
            _current = new FileStream(target, replayed ? FileMode.OpenOrCreate : FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);
            _entries.Add(new SplitEntry(name, target, dataStart, length));
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _current = null;
            return false; // left in the zip: the unpack copies it as before
        }
    }

    private void EndDiverted()
    {
        _current!.Dispose();
        _current = null;
        _diverting = false;
    }

    private void Stop()
    {
        _stopped = true;
        _header.SetLength(0);
    }

    /// <summary>Where the unpack would write the entry, or null for names it would refuse (or folders).</summary>
    private string? SafeTarget(string name)
    {
        var normalized = name.Replace('\\', '/');
        if (normalized.Length == 0 || normalized.EndsWith('/') || normalized.StartsWith('/') || (normalized.Length >= 2 && normalized[1] == ':')) return null;
        if (normalized.Split('/').Any(s => s == ".." || s.Length == 0)) return null;
        var target = Path.GetFullPath(Path.Combine(_root, normalized));
        return target.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal) ? target : null;
    }
}
