using System.Text;

namespace SleapRtc.Signaling.Server;

/// <summary>One parsed HTTP/1.1 request. Header names are case-insensitive.</summary>
internal sealed class HttpRequest
{
    public required string Method { get; init; }
    public required string Target { get; init; }
    public required string Version { get; init; }
    public required Dictionary<string, string> Headers { get; init; }
    public byte[] Body { get; init; } = [];

    public string Path => Target.Split('?', 2)[0];

    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;

    public bool HeaderHasToken(string name, string token)
        => Header(name)?.Split(',').Any(part => part.Trim().Equals(token, StringComparison.OrdinalIgnoreCase)) == true;

    public bool KeepAlive => Version == "HTTP/1.1" ? !HeaderHasToken("Connection", "close") : HeaderHasToken("Connection", "keep-alive");

    public bool IsWebSocketUpgrade => Method == "GET" && HeaderHasToken("Upgrade", "websocket") && HeaderHasToken("Connection", "upgrade");
}

/// <summary>Why a request could not be parsed, with the status code to answer.</summary>
internal sealed class HttpParseException(int statusCode, string message) : Exception(message)
{
    public int StatusCode { get; } = statusCode;
}

/// <summary>
/// A small, strict HTTP/1.1 request reader: request line and headers up to a size limit, bodies by
/// Content-Length only (no chunked uploads: our clients never send them). Bytes read past the current
/// request stay buffered for the next one, or for the WebSocket after an upgrade.
/// </summary>
internal sealed class HttpRequestReader
{
    private const int MaxHeaderBytes = 16 * 1024;
    private readonly Stream _stream;
    private readonly int _maxBodyBytes;
    private byte[] _buffer = new byte[4096];
    private int _start;
    private int _end;

    public HttpRequestReader(Stream stream, int maxBodyBytes)
    {
        _stream = stream;
        _maxBodyBytes = maxBodyBytes;
    }

    /// <summary>Bytes received after the last request (handed to the WebSocket on upgrade).</summary>
    public ReadOnlyMemory<byte> Buffered => _buffer.AsMemory(_start, _end - _start);

    /// <summary>Returns null when the peer closed the connection cleanly between requests.</summary>
    public async Task<HttpRequest?> ReadAsync(CancellationToken ct)
    {
        int headerEnd;
        while ((headerEnd = FindHeaderEnd()) < 0)
        {
            if (_end - _start >= MaxHeaderBytes) throw new HttpParseException(431, "Request headers too large.");
            if (!await FillAsync(ct).ConfigureAwait(false))
            {
                if (_end == _start) return null;
                throw new HttpParseException(400, "Connection closed inside the request headers.");
            }
        }

        var headerText = Encoding.Latin1.GetString(_buffer, _start, headerEnd - _start);
        _start = headerEnd + 4;
        var lines = headerText.Split("\r\n");
        var requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3 || requestLine[0].Length == 0 || !requestLine[1].StartsWith('/') && requestLine[1] != "*")
            throw new HttpParseException(400, "Malformed request line.");
        if (requestLine[2] is not ("HTTP/1.1" or "HTTP/1.0"))
            throw new HttpParseException(505, "Only HTTP/1.0 and HTTP/1.1 are supported.");

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            if (colon <= 0 || line[0] is ' ' or '\t') throw new HttpParseException(400, "Malformed header line.");
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim();
            headers[name] = headers.TryGetValue(name, out var existing) ? existing + ", " + value : value;
        }

        if (headers.ContainsKey("Transfer-Encoding")) throw new HttpParseException(411, "Chunked request bodies are not supported; send Content-Length.");
        var length = 0;
        if (headers.TryGetValue("Content-Length", out var lengthText))
        {
            if (!int.TryParse(lengthText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out length))
                throw new HttpParseException(400, "Invalid Content-Length.");
            if (length > _maxBodyBytes) throw new HttpParseException(413, "Request body too large.");
        }

        var body = new byte[length];
        var copied = 0;
        while (copied < length)
        {
            if (_end == _start && !await FillAsync(ct).ConfigureAwait(false))
                throw new HttpParseException(400, "Connection closed inside the request body.");
            var chunk = Math.Min(length - copied, _end - _start);
            Buffer.BlockCopy(_buffer, _start, body, copied, chunk);
            _start += chunk;
            copied += chunk;
        }

        return new HttpRequest { Method = requestLine[0], Target = requestLine[1], Version = requestLine[2], Headers = headers, Body = body };
    }

    private int FindHeaderEnd()
    {
        var span = _buffer.AsSpan(_start, _end - _start);
        var index = span.IndexOf("\r\n\r\n"u8);
        return index < 0 ? -1 : _start + index;
    }

    private async Task<bool> FillAsync(CancellationToken ct)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
        var read = await _stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
        if (read == 0) return false;
        _end += read;
        return true;
    }
}

/// <summary>A stream that first yields bytes already read by the HTTP reader, then the network stream.</summary>
internal sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream inner) : Stream
{
    private ReadOnlyMemory<byte> _prefix = prefix;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

#if NET8_0_OR_GREATER
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_prefix.IsEmpty) return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        var count = Math.Min(buffer.Length, _prefix.Length);
        _prefix[..count].CopyTo(buffer);
        _prefix = _prefix[count..];
        return count;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);
#endif

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => _prefix.IsEmpty ? inner.ReadAsync(buffer, offset, count, cancellationToken) : Task.FromResult(Read(buffer, offset, count));

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_prefix.IsEmpty) return inner.Read(buffer, offset, count);
        var n = Math.Min(count, _prefix.Length);
        _prefix[..n].CopyTo(buffer.AsMemory(offset, n));
        _prefix = _prefix[n..];
        return n;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);
    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
    public override void Flush() => inner.Flush();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
