using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;

namespace SleapRtc.Bench.Common;

/// <summary>A raw WebSocket peer, as light as possible so the benchmark measures the server.</summary>
public sealed class BenchPeer
{
    private readonly ClientWebSocket _socket;
    // Small at first: two thousand idle workers must not hold a megabyte each; grows for peer lists.
    private byte[] _buffer = new byte[4096];
    private readonly SemaphoreSlim _sendLock = new(1, 1);

    private BenchPeer(ClientWebSocket socket, string peerId)
    {
        _socket = socket;
        PeerId = peerId;
    }

    public string PeerId { get; }

    public static async Task<BenchPeer> ConnectAsync(Uri url, string peerId)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        await socket.ConnectAsync(url, CancellationToken.None);
        return new BenchPeer(socket, peerId);
    }

    public async Task SendAsync(string json)
    {
        await _sendLock.WaitAsync();
        try { await _socket.SendAsync(Encoding.UTF8.GetBytes(json), WebSocketMessageType.Text, true, CancellationToken.None); }
        finally { _sendLock.Release(); }
    }

    /// <summary>Receives one whole message; returns its length, or -1 when the socket closed.</summary>
    public async Task<int> ReceiveRawAsync(CancellationToken ct)
    {
        var length = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            if (length == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 4);
            result = await _socket.ReceiveAsync(_buffer.AsMemory(length), ct);
            if (result.MessageType == WebSocketMessageType.Close) return -1;
            length += result.Count;
        } while (!result.EndOfMessage);
        return length;
    }

    public bool IsPeerMessage(int length) => _buffer.AsSpan(0, length).IndexOf("\"peer_message\""u8) >= 0;

    /// <summary>Whether the last message received (of <paramref name="length"/> bytes) contains <paramref name="text"/>.</summary>
    public bool LastMessageContains(int length, string text) => _buffer.AsSpan(0, length).IndexOf(Encoding.UTF8.GetBytes(text)) >= 0;

    /// <summary>Receives one message and returns its first 200 characters.</summary>
    public async Task<string> ReceiveHeadAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var length = await ReceiveRawAsync(timeout.Token);
        if (length < 0) throw new WebSocketException("closed");
        return Encoding.UTF8.GetString(_buffer, 0, Math.Min(length, 200));
    }

    /// <summary>Changes this peer's metadata (a "poll" property) and waits for the server's acknowledgement.</summary>
    public async Task UpdateMetadataAsync(int poll)
    {
        await SendAsync($$"""{"type":"update_metadata","peer_id":"{{PeerId}}","metadata":{"properties":{"poll":{{poll}} } } }""");
        string ack;
        do ack = await ReceiveHeadAsync(); while (!ack.StartsWith("{\"type\":\"metadata_updated\"", StringComparison.Ordinal));
    }

    /// <summary>
    /// One discover_peers round trip: sends <paramref name="request"/> and waits for the peer_list (other messages are
    /// skipped); returns the milliseconds it took and the answer's length, for <see cref="LastMessageContains"/>.
    /// </summary>
    public async Task<(double Milliseconds, int Length)> DiscoverAsync(string request)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var started = Stopwatch.GetTimestamp();
        await SendAsync(request);
        int length;
        do
        {
            length = await ReceiveRawAsync(timeout.Token);
            if (length < 0) throw new WebSocketException("closed");
        } while (!LastMessageContains(Math.Min(length, 40), "\"peer_list\""));
        return (Stopwatch.GetElapsedTime(started).TotalMilliseconds, length);
    }

    /// <summary>The peer_list count of the last message received (of <paramref name="length"/> bytes).</summary>
    public int LastPeerListCount(int length)
    {
        var head = Encoding.UTF8.GetString(_buffer, 0, Math.Min(length, 200));
        var countAt = head.IndexOf("\"count\":", StringComparison.Ordinal) + 8;
        return int.Parse(head.AsSpan(countAt, head.IndexOf(',', countAt) - countAt));
    }

    public void StartDraining() => _ = Task.Run(async () =>
    {
        try { while (await ReceiveRawAsync(CancellationToken.None) >= 0) { } }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException) { }
    });

    public void Abort() => _socket.Abort();

    public bool IsOpen => _socket.State == WebSocketState.Open;
}
