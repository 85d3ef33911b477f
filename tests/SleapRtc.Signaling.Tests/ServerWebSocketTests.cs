using Xunit;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using SleapRtc.Signaling.Server;

namespace SleapRtc.Signaling.Tests;

/// <summary>
/// The server-side WebSocket the netstandard2.0 (Windows PowerShell 5.1) server uses, against the runtime's own
/// ClientWebSocket over loopback TCP, and against raw frames where a client misbehaves.
/// </summary>
public sealed class ServerWebSocketTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(0)]
    [InlineData(125)]
    [InlineData(126)]
    [InlineData(65535)]
    [InlineData(65536)]
    [InlineData(1 << 20)]
    public async Task Messages_of_every_length_class_arrive_intact_both_ways(int size)
    {
        await using var pair = await Pair.OpenAsync();
        var payload = RandomNumberGenerator.GetBytes(size);
        await pair.Client.SendAsync(payload, WebSocketMessageType.Binary, true, CancellationToken.None);
        var (received, type) = await ReceiveMessageAsync(pair.Server, 4096);
        Assert.Equal(WebSocketMessageType.Binary, type);
        Assert.Equal(payload, received);

        await pair.Server.SendAsync(new ArraySegment<byte>(payload), WebSocketMessageType.Binary, true, CancellationToken.None);
        var (echoed, _) = await ReceiveMessageAsync(pair.Client, 4096);
        Assert.Equal(payload, echoed);
    }

    [Fact]
    public async Task A_small_buffer_gets_partial_results_with_end_of_message_only_on_the_last()
    {
        await using var pair = await Pair.OpenAsync();
        await pair.Client.SendAsync(Encoding.UTF8.GetBytes("0123456789abcdef"), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[5];
        var ends = new List<bool>();
        var text = new StringBuilder();
        WebSocketReceiveResult result;
        do
        {
            result = await pair.Server.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None).WaitAsync(Wait);
            Assert.Equal(WebSocketMessageType.Text, result.MessageType);
            text.Append(Encoding.UTF8.GetString(buffer, 0, result.Count));
            ends.Add(result.EndOfMessage);
        } while (!result.EndOfMessage);
        Assert.Equal("0123456789abcdef", text.ToString());
        Assert.Equal(new[] { false, false, false, true }, ends);
    }

    [Fact]
    public async Task Fragmented_messages_from_the_client_are_reassembled()
    {
        await using var pair = await Pair.OpenAsync();
        await pair.Client.SendAsync(Encoding.UTF8.GetBytes("hello "), WebSocketMessageType.Text, false, CancellationToken.None);
        await pair.Client.SendAsync(Encoding.UTF8.GetBytes("fragmented "), WebSocketMessageType.Text, false, CancellationToken.None);
        await pair.Client.SendAsync(Encoding.UTF8.GetBytes("world"), WebSocketMessageType.Text, true, CancellationToken.None);
        var (message, type) = await ReceiveMessageAsync(pair.Server, 64);
        Assert.Equal(WebSocketMessageType.Text, type);
        Assert.Equal("hello fragmented world", Encoding.UTF8.GetString(message));
    }

    [Fact]
    public async Task Concurrent_sends_never_interleave_frames()
    {
        await using var pair = await Pair.OpenAsync();
        var messages = Enumerable.Range(0, 8).Select(i => new string((char)('a' + i), 20_000 + i)).ToList();
        await Task.WhenAll(messages.Select(m => Task.Run(() =>
            pair.Server.SendAsync(new ArraySegment<byte>(Encoding.UTF8.GetBytes(m)), WebSocketMessageType.Text, true, CancellationToken.None))));
        var received = new List<string>();
        for (var i = 0; i < messages.Count; i++)
            received.Add(Encoding.UTF8.GetString((await ReceiveMessageAsync(pair.Client, 1024)).Message));
        Assert.Equal(messages.OrderBy(m => m), received.OrderBy(m => m));
    }

    [Fact]
    public async Task A_close_from_the_client_reports_status_and_reason_and_the_handshake_completes()
    {
        await using var pair = await Pair.OpenAsync();
        var clientClose = pair.Client.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        var result = await pair.Server.ReceiveAsync(new ArraySegment<byte>(new byte[16]), CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, result.CloseStatus);
        Assert.Equal("bye", result.CloseStatusDescription);
        Assert.Equal(WebSocketState.CloseReceived, pair.Server.State);

        await pair.Server.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(WebSocketState.Closed, pair.Server.State);
        await clientClose.WaitAsync(Wait);
        Assert.Equal(WebSocketState.Closed, pair.Client.State);
    }

    [Fact]
    public async Task A_close_from_the_server_reaches_the_client_with_its_status()
    {
        await using var pair = await Pair.OpenAsync();
        var serverClose = pair.Server.CloseAsync(WebSocketCloseStatus.PolicyViolation, "go away", CancellationToken.None);
        var result = await pair.Client.ReceiveAsync(new byte[16], CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, result.CloseStatus);
        Assert.Equal("go away", result.CloseStatusDescription);
        await pair.Client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
        await serverClose.WaitAsync(Wait);
        Assert.Equal(WebSocketState.Closed, pair.Server.State);
    }

    [Fact]
    public async Task A_ping_is_answered_with_a_pong_carrying_its_payload()
    {
        await using var raw = await RawPair.OpenAsync();
        var receive = raw.Server.ReceiveAsync(new ArraySegment<byte>(new byte[64]), CancellationToken.None);
        await raw.SendMaskedAsync(0x89, "are you there"u8.ToArray());
        var pong = await raw.ReadFrameAsync();
        Assert.Equal(0x8A, pong.FirstByte);
        Assert.Equal("are you there", Encoding.UTF8.GetString(pong.Payload));
        await raw.SendMaskedAsync(0x81, "after"u8.ToArray());
        var result = await receive.WaitAsync(Wait);
        Assert.Equal(5, result.Count);
        Assert.True(result.EndOfMessage);
    }

    [Fact]
    public async Task An_unmasked_client_frame_is_a_protocol_error_answered_with_close_1002()
    {
        await using var raw = await RawPair.OpenAsync();
        var receive = raw.Server.ReceiveAsync(new ArraySegment<byte>(new byte[64]), CancellationToken.None);
        await raw.Stream.WriteAsync(new byte[] { 0x81, 0x02, (byte)'h', (byte)'i' });
        var error = await Assert.ThrowsAsync<WebSocketException>(() => receive.WaitAsync(Wait));
        Assert.Contains("not masked", error.Message);
        var close = await raw.ReadFrameAsync();
        Assert.Equal(0x88, close.FirstByte);
        Assert.Equal(1002, (close.Payload[0] << 8) | close.Payload[1]);
        Assert.Equal(WebSocketState.Aborted, raw.Server.State);
    }

    [Fact]
    public async Task A_client_that_drops_the_connection_is_reported_as_closed_prematurely()
    {
        await using var raw = await RawPair.OpenAsync();
        var receive = raw.Server.ReceiveAsync(new ArraySegment<byte>(new byte[64]), CancellationToken.None);
        raw.Client.Close();
        var error = await Assert.ThrowsAsync<WebSocketException>(() => receive.WaitAsync(Wait));
        Assert.Equal(WebSocketError.ConnectionClosedPrematurely, error.WebSocketErrorCode);
        Assert.Equal(WebSocketState.Aborted, raw.Server.State);
    }

    [Fact]
    public async Task Cancelling_a_pending_receive_aborts_the_socket_like_the_runtime()
    {
        await using var pair = await Pair.OpenAsync();
        using var cancel = new CancellationTokenSource();
        var receive = pair.Server.ReceiveAsync(new ArraySegment<byte>(new byte[64]), cancel.Token);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => receive.WaitAsync(Wait));
        Assert.Equal(WebSocketState.Aborted, pair.Server.State);
    }

    [Fact]
    public async Task The_signaling_server_peer_loop_runs_on_it_receive_send_and_close()
    {
        // PeerSocket as the server uses it: its read loop, its queued writer, a close with a reason.
        await using var pair = await Pair.OpenAsync();
        var peer = new PeerSocket(pair.Server, "127.0.0.1", "127.0.0.1", 1 << 20, 64);
        var run = peer.RunAsync(async (socket, text) =>
        {
            Assert.True(socket.TrySend("{\"echo\":" + text + "}"));
            if (text.Contains("bye")) socket.Close(WebSocketCloseStatus.NormalClosure, "done");
            await Task.CompletedTask;
        }, CancellationToken.None);
        await pair.Client.SendAsync(Encoding.UTF8.GetBytes("{\"n\":1}"), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("{\"echo\":{\"n\":1}}", Encoding.UTF8.GetString((await ReceiveMessageAsync(pair.Client, 256)).Message));
        await pair.Client.SendAsync(Encoding.UTF8.GetBytes("\"bye\""), WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal("{\"echo\":\"bye\"}", Encoding.UTF8.GetString((await ReceiveMessageAsync(pair.Client, 256)).Message));
        var close = await pair.Client.ReceiveAsync(new byte[16], CancellationToken.None).WaitAsync(Wait);
        Assert.Equal(WebSocketMessageType.Close, close.MessageType);
        Assert.Equal("done", close.CloseStatusDescription);
        await run.WaitAsync(Wait);
    }

    private static async Task<(byte[] Message, WebSocketMessageType Type)> ReceiveMessageAsync(WebSocket socket, int bufferSize)
    {
        var buffer = new byte[bufferSize];
        using var message = new MemoryStream();
        WebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None).WaitAsync(Wait);
            message.Write(buffer, 0, result.Count);
        } while (!result.EndOfMessage);
        return (message.ToArray(), result.MessageType);
    }

    /// <summary>Accepts one TCP connection on loopback and answers the HTTP upgrade, as the signaling host does.</summary>
    private static async Task<(TcpClient Client, NetworkStream Stream)> AcceptUpgradedAsync(TcpListener listener)
    {
        var client = await listener.AcceptTcpClientAsync().WaitAsync(Wait);
        var stream = client.GetStream();
        var request = new StringBuilder();
        var one = new byte[1];
        while (!request.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one).AsTask().WaitAsync(Wait) == 0) throw new IOException("client left during the upgrade");
            request.Append((char)one[0]);
        }
        var key = request.ToString().Split("\r\n").First(l => l.StartsWith("Sec-WebSocket-Key:", StringComparison.OrdinalIgnoreCase)).Split(':', 2)[1].Trim();
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"));
        return (client, stream);
    }

    private sealed class Pair : IAsyncDisposable
    {
        private TcpClient? _accepted;
        public ClientWebSocket Client { get; } = new();
        public ServerWebSocket Server { get; private set; } = null!;

        public static async Task<Pair> OpenAsync()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            try
            {
                var pair = new Pair();
                var accepting = AcceptUpgradedAsync(listener);
                await pair.Client.ConnectAsync(new Uri($"ws://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/"), CancellationToken.None).WaitAsync(Wait);
                var (client, stream) = await accepting;
                pair._accepted = client;
                pair.Server = new ServerWebSocket(stream);
                return pair;
            }
            finally
            {
                listener.Stop();
            }
        }

        public ValueTask DisposeAsync()
        {
            Client.Dispose();
            Server?.Dispose();
            _accepted?.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A hand-written client: frames exactly as a test needs them, well-formed or not.</summary>
    private sealed class RawPair : IAsyncDisposable
    {
        public TcpClient Client { get; } = new();
        public NetworkStream Stream { get; private set; } = null!;
        public ServerWebSocket Server { get; private set; } = null!;
        private TcpClient? _accepted;

        public static async Task<RawPair> OpenAsync()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            try
            {
                var pair = new RawPair();
                var accepting = AcceptUpgradedAsync(listener);
                await pair.Client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port).WaitAsync(Wait);
                pair.Stream = pair.Client.GetStream();
                var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
                await pair.Stream.WriteAsync(Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"));
                var (accepted, stream) = await accepting;
                pair._accepted = accepted;
                pair.Server = new ServerWebSocket(stream);
                var response = new StringBuilder();
                var one = new byte[1];
                while (!response.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
                {
                    await pair.Stream.ReadExactlyAsync(one).AsTask().WaitAsync(Wait);
                    response.Append((char)one[0]);
                }
                Assert.StartsWith("HTTP/1.1 101", response.ToString());
                return pair;
            }
            finally
            {
                listener.Stop();
            }
        }

        public async Task SendMaskedAsync(byte firstByte, byte[] payload)
        {
            var mask = RandomNumberGenerator.GetBytes(4);
            var frame = new byte[2 + 4 + payload.Length];
            frame[0] = firstByte;
            frame[1] = (byte)(0x80 | payload.Length);
            mask.CopyTo(frame, 2);
            for (var i = 0; i < payload.Length; i++) frame[6 + i] = (byte)(payload[i] ^ mask[i & 3]);
            await Stream.WriteAsync(frame);
        }

        public async Task<(byte FirstByte, byte[] Payload)> ReadFrameAsync()
        {
            var header = new byte[2];
            await Stream.ReadExactlyAsync(header).AsTask().WaitAsync(Wait);
            Assert.Equal(0, header[1] & 0x80); // server frames are never masked
            var payload = new byte[header[1] & 0x7F];
            await Stream.ReadExactlyAsync(payload).AsTask().WaitAsync(Wait);
            return (header[0], payload);
        }

        public ValueTask DisposeAsync()
        {
            Client.Dispose();
            Server?.Dispose();
            _accepted?.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
