using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using SleapRtc.Signaling.Server;
using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>The runtime's ClientWebSocket (and raw TCP clients) against ServerWebSocket over loopback.</summary>
public sealed class ServerWebSocketTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(0, WebSocketMessageType.Text)]
    [InlineData(125, WebSocketMessageType.Text)]
    [InlineData(126, WebSocketMessageType.Binary)]
    [InlineData(65535, WebSocketMessageType.Binary)]
    [InlineData(65536, WebSocketMessageType.Text)]
    [InlineData(1 << 20, WebSocketMessageType.Binary)]
    public async Task Messages_of_every_length_class_echo_intact(int size, WebSocketMessageType type)
    {
        await using var pair = await Pair.OpenAsync();
        var payload = Pattern(size, type == WebSocketMessageType.Text);
        await pair.Client.SendAsync(payload, type, true, Token());
        var (received, receivedType) = await ReadMessageAsync(pair.Server, 8192);
        Assert.Equal(type, receivedType);
        Assert.Equal(payload, received);

        await pair.Server.SendAsync(new ArraySegment<byte>(received), type, true, Token());
        var (echoed, echoedType) = await ReadMessageAsync(pair.Client, 8192);
        Assert.Equal(type, echoedType);
        Assert.Equal(payload, echoed);
    }

    [Fact]
    public async Task A_small_buffer_gets_partial_results_with_end_of_message_only_on_the_last()
    {
        await using var pair = await Pair.OpenAsync();
        var payload = Pattern(1000, false);
        await pair.Client.SendAsync(payload, WebSocketMessageType.Binary, true, Token());
        var buffer = new byte[64];
        var collected = new List<byte>();
        var results = new List<WebSocketReceiveResult>();
        WebSocketReceiveResult result;
        do
        {
            result = await pair.Server.ReceiveAsync(new ArraySegment<byte>(buffer), Token());
            results.Add(result);
            collected.AddRange(buffer.Take(result.Count));
        } while (!result.EndOfMessage);
        Assert.True(results.Count >= 1000 / 64);
        Assert.All(results.Take(results.Count - 1), r => Assert.False(r.EndOfMessage));
        Assert.Equal(payload, collected.ToArray());
    }

    [Fact]
    public async Task Client_fragmented_messages_are_reassembled_with_the_first_frames_type()
    {
        await using var pair = await Pair.OpenAsync();
        var parts = new[] { "{\"a\":", "\"fragmented\"", ",\"b\":1", "}" };
        for (var i = 0; i < parts.Length; i++)
            await pair.Client.SendAsync(Encoding.UTF8.GetBytes(parts[i]), WebSocketMessageType.Text, i == parts.Length - 1, Token());
        await pair.Client.SendAsync(new byte[] { 1, 2, 3 }, WebSocketMessageType.Binary, true, Token());

        var (text, textType) = await ReadMessageAsync(pair.Server, 4096);
        Assert.Equal(WebSocketMessageType.Text, textType);
        Assert.Equal(string.Concat(parts), Encoding.UTF8.GetString(text));
        var (binary, binaryType) = await ReadMessageAsync(pair.Server, 4096);
        Assert.Equal(WebSocketMessageType.Binary, binaryType);
        Assert.Equal(new byte[] { 1, 2, 3 }, binary);
    }

    [Fact]
    public async Task Server_fragmented_sends_arrive_as_one_message()
    {
        await using var pair = await Pair.OpenAsync();
        await pair.Server.SendAsync(new ArraySegment<byte>(Encoding.UTF8.GetBytes("hello ")), WebSocketMessageType.Text, false, Token());
        await pair.Server.SendAsync(new ArraySegment<byte>(Encoding.UTF8.GetBytes("world")), WebSocketMessageType.Text, true, Token());
        var (message, type) = await ReadMessageAsync(pair.Client, 4096);
        Assert.Equal(WebSocketMessageType.Text, type);
        Assert.Equal("hello world", Encoding.UTF8.GetString(message));
    }

    [Fact]
    public async Task Concurrent_sends_from_eight_tasks_never_interleave()
    {
        await using var pair = await Pair.OpenAsync();
        const int senders = 8, perSender = 25, size = 20_000;
        var sends = Enumerable.Range(0, senders).Select(sender => Task.Run(async () =>
        {
            var payload = Enumerable.Repeat((byte)sender, size).ToArray();
            for (var i = 0; i < perSender; i++)
                await pair.Server.SendAsync(new ArraySegment<byte>(payload), WebSocketMessageType.Binary, true, Token());
        })).ToArray();

        var counts = new int[senders];
        for (var i = 0; i < senders * perSender; i++)
        {
            var (message, _) = await ReadMessageAsync(pair.Client, 8192);
            Assert.Equal(size, message.Length);
            Assert.All(message, b => Assert.Equal(message[0], b));
            counts[message[0]]++;
        }
        await Task.WhenAll(sends).WaitAsync(Timeout);
        Assert.All(counts, c => Assert.Equal(perSender, c));
    }

    [Fact]
    public async Task Close_initiated_by_the_server_completes_on_both_ends()
    {
        await using var pair = await Pair.OpenAsync();
        await pair.Server.CloseOutputAsync(WebSocketCloseStatus.PolicyViolation, "too chatty", Token());
        Assert.Equal(WebSocketState.CloseSent, pair.Server.State);
        await Assert.ThrowsAsync<WebSocketException>(() =>
            pair.Server.SendAsync(new ArraySegment<byte>(new byte[1]), WebSocketMessageType.Binary, true, Token()));

        var clientResult = await pair.Client.ReceiveAsync(new byte[16], Token());
        Assert.Equal(WebSocketMessageType.Close, clientResult.MessageType);
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, clientResult.CloseStatus);
        Assert.Equal("too chatty", clientResult.CloseStatusDescription);
        Assert.Equal(WebSocketState.CloseReceived, pair.Client.State);

        var clientClose = pair.Client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "ok", Token());
        var serverResult = await pair.Server.ReceiveAsync(new ArraySegment<byte>(new byte[16]), Token());
        await clientClose.WaitAsync(Timeout);
        Assert.Equal(WebSocketMessageType.Close, serverResult.MessageType);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, serverResult.CloseStatus);
        Assert.Equal("ok", pair.Server.CloseStatusDescription);
        Assert.Equal(WebSocketState.Closed, pair.Server.State);
        Assert.Equal(WebSocketState.Closed, pair.Client.State);
    }

    [Fact]
    public async Task Close_initiated_by_the_client_completes_on_both_ends()
    {
        await using var pair = await Pair.OpenAsync();
        var clientClose = pair.Client.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Token());
        var result = await pair.Server.ReceiveAsync(new ArraySegment<byte>(new byte[16]), Token());
        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, result.CloseStatus);
        Assert.Equal("done", result.CloseStatusDescription);
        Assert.Equal(WebSocketState.CloseReceived, pair.Server.State);
        // Data may still go out after the peer's close frame, before ours.
        await pair.Server.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", Token());
        Assert.Equal(WebSocketState.Closed, pair.Server.State);
        await clientClose.WaitAsync(Timeout);
        Assert.Equal(WebSocketState.Closed, pair.Client.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, pair.Client.CloseStatus);
        Assert.Equal("bye", pair.Client.CloseStatusDescription);
    }

    [Fact]
    public async Task Server_CloseAsync_waits_for_the_clients_close_frame()
    {
        await using var pair = await Pair.OpenAsync();
        var serverClose = pair.Server.CloseAsync(WebSocketCloseStatus.NormalClosure, "", Token());
        var clientResult = await pair.Client.ReceiveAsync(new byte[16], Token());
        Assert.Equal(WebSocketMessageType.Close, clientResult.MessageType);
        Assert.False(serverClose.IsCompleted);
        await pair.Client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", Token());
        await serverClose.WaitAsync(Timeout);
        Assert.Equal(WebSocketState.Closed, pair.Server.State);
    }

    [Fact]
    public async Task A_ping_gets_a_pong_with_the_same_payload_and_is_not_surfaced()
    {
        await using var raw = await RawPair.OpenAsync();
        var receive = raw.Server.ReceiveAsync(new ArraySegment<byte>(new byte[64]), Token());
        await raw.SendMaskedAsync(0x9, Encoding.ASCII.GetBytes("are you there"));
        var pong = await raw.ReadBytesAsync(2 + 13);
        Assert.Equal(0x8A, pong[0]);
        Assert.Equal(13, pong[1]);
        Assert.Equal("are you there", Encoding.ASCII.GetString(pong, 2, 13));

        await raw.SendMaskedAsync(0x1, Encoding.UTF8.GetBytes("after ping"));
        var result = await receive.WaitAsync(Timeout);
        Assert.Equal(WebSocketMessageType.Text, result.MessageType);
        Assert.True(result.EndOfMessage);
        Assert.Equal(10, result.Count);
    }

    [Theory]
    [InlineData(new byte[] { 0x81, 0x02, 0x68, 0x69 })] // unmasked text frame
    [InlineData(new byte[] { 0xC1, 0x80, 1, 2, 3, 4 })] // RSV1 without an extension
    [InlineData(new byte[] { 0x83, 0x80, 1, 2, 3, 4 })] // reserved opcode 3
    [InlineData(new byte[] { 0x09, 0x80, 1, 2, 3, 4 })] // fragmented ping
    [InlineData(new byte[] { 0x89, 0xFE, 0x00, 0x7E })] // ping longer than 125 bytes
    [InlineData(new byte[] { 0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0 })] // 64-bit length with the high bit set
    public async Task Protocol_errors_send_close_1002_and_throw(byte[] frame)
    {
        await using var raw = await RawPair.OpenAsync();
        await raw.Stream.WriteAsync(frame, Token());
        await Assert.ThrowsAsync<WebSocketException>(() => raw.Server.ReceiveAsync(new ArraySegment<byte>(new byte[64]), Token()));
        Assert.Equal(WebSocketState.Aborted, raw.Server.State);
        var close = await raw.ReadBytesAsync(4);
        Assert.Equal(0x88, close[0]);
        Assert.True((close[1] & 0x7F) >= 2, "a close frame carries at least its status");
        Assert.Equal(1002, (close[2] << 8) | close[3]);
    }

    [Fact]
    public async Task A_client_that_drops_the_connection_is_reported_as_closed_prematurely()
    {
        await using var raw = await RawPair.OpenAsync();
        var receive = raw.Server.ReceiveAsync(new ArraySegment<byte>(new byte[64]), Token());
        // Half a frame, then the TCP connection goes away.
        await raw.Stream.WriteAsync(new byte[] { 0x81, 0x85, 1, 2 }, Token());
        raw.Tcp.Client.Shutdown(SocketShutdown.Both);
        raw.Tcp.Close();
        var error = await Assert.ThrowsAsync<WebSocketException>(() => receive.WaitAsync(Timeout));
        Assert.Equal(WebSocketError.ConnectionClosedPrematurely, error.WebSocketErrorCode);
        Assert.Equal(WebSocketState.Aborted, raw.Server.State);
    }

    [Fact]
    public async Task Cancelling_a_pending_receive_aborts_the_socket()
    {
        await using var pair = await Pair.OpenAsync();
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            pair.Server.ReceiveAsync(new ArraySegment<byte>(new byte[64]), cancel.Token).WaitAsync(Timeout));
        Assert.Equal(WebSocketState.Aborted, pair.Server.State);
    }

    [Fact]
    public async Task PeerSocket_runs_over_it_receive_loop_concurrent_sends_and_close()
    {
        await using var pair = await Pair.OpenAsync();
        var peer = new PeerSocket(pair.Server, "127.0.0.1", "localhost", new PeerSocketLimits(64 * 1024, 1024));
        var handled = 0;
        using var stop = new CancellationTokenSource(Timeout);
        // The hub's pattern: each message answered through the queue while relays are queued from elsewhere.
        var run = peer.RunAsync((socket, text) =>
        {
            Interlocked.Increment(ref handled);
            socket.TrySend("{\"echo\":" + text + "}");
            return Task.CompletedTask;
        }, stop.Token);
        var relays = Task.Run(() => { for (var i = 0; i < 50; i++) peer.TrySend("{\"relay\":" + i + "}"); });

        for (var i = 0; i < 50; i++)
            await pair.Client.SendAsync(Encoding.UTF8.GetBytes("{\"n\":" + i + "}"), WebSocketMessageType.Text, true, Token());
        var echoes = 0;
        var relayed = 0;
        while (echoes + relayed < 100)
        {
            var (message, type) = await ReadMessageAsync(pair.Client, 256);
            Assert.Equal(WebSocketMessageType.Text, type);
            var text = Encoding.UTF8.GetString(message);
            if (text.StartsWith("{\"echo\":{\"n\":", StringComparison.Ordinal)) echoes++;
            else if (text.StartsWith("{\"relay\":", StringComparison.Ordinal)) relayed++;
            else Assert.Fail("unexpected message " + text);
        }
        await relays.WaitAsync(Timeout);

        peer.Close(WebSocketCloseStatus.PolicyViolation, "Too many unread messages");
        var close = await pair.Client.ReceiveAsync(new byte[64], Token());
        Assert.Equal(WebSocketMessageType.Close, close.MessageType);
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, close.CloseStatus);
        Assert.Equal("Too many unread messages", close.CloseStatusDescription);
        await run.WaitAsync(Timeout);
        Assert.Equal(50, handled);
        Assert.True(pair.Server.State is WebSocketState.Aborted or WebSocketState.Closed);
    }

    private static CancellationToken Token() => new CancellationTokenSource(Timeout).Token;

    private static byte[] Pattern(int size, bool text)
    {
        var data = new byte[size];
        for (var i = 0; i < size; i++) data[i] = text ? (byte)('a' + i % 26) : (byte)(i * 31 + (i >> 8));
        return data;
    }

    private static async Task<(byte[] Message, WebSocketMessageType Type)> ReadMessageAsync(WebSocket socket, int bufferSize)
    {
        var buffer = new byte[bufferSize];
        using var message = new MemoryStream();
        WebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(new ArraySegment<byte>(buffer), Token());
            Assert.NotEqual(WebSocketMessageType.Close, result.MessageType);
            message.Write(buffer, 0, result.Count);
        } while (!result.EndOfMessage);
        return (message.ToArray(), result.MessageType);
    }

    /// <summary>Accepts one TCP connection on loopback and answers its HTTP upgrade; returns the stream after the 101.</summary>
    private static async Task<(TcpClient Tcp, Stream Stream)> AcceptUpgradeAsync(TcpListener listener)
    {
        var tcp = await listener.AcceptTcpClientAsync(Token());
        var stream = tcp.GetStream();
        var request = new StringBuilder();
        var one = new byte[1];
        while (!request.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(one, Token()) == 0) throw new IOException("client left during the upgrade");
            request.Append((char)one[0]);
        }
        var keyLine = request.ToString().Split("\r\n").First(l => l.StartsWith("Sec-WebSocket-Key:", StringComparison.OrdinalIgnoreCase));
        var key = keyLine.Substring(keyLine.IndexOf(':') + 1).Trim();
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        var response = $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(response), Token());
        return (tcp, stream);
    }

    private sealed class Pair : IAsyncDisposable
    {
        private readonly TcpClient _tcp;
        private Pair(ClientWebSocket client, ServerWebSocket server, TcpClient tcp) { Client = client; Server = server; _tcp = tcp; }
        public ClientWebSocket Client { get; }
        public ServerWebSocket Server { get; }

        public static async Task<Pair> OpenAsync()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            try
            {
                var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                var client = new ClientWebSocket();
                client.Options.KeepAliveInterval = TimeSpan.Zero;
                var accepting = AcceptUpgradeAsync(listener);
                await client.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/"), Token());
                var (tcp, stream) = await accepting.WaitAsync(Timeout);
                return new Pair(client, new ServerWebSocket(stream), tcp);
            }
            finally
            {
                listener.Stop();
            }
        }

        public ValueTask DisposeAsync()
        {
            Client.Abort();
            Client.Dispose();
            Server.Dispose();
            _tcp.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A hand-driven client: writes exactly the frames a test needs, reads the server's raw bytes.</summary>
    private sealed class RawPair : IAsyncDisposable
    {
        private readonly TcpClient _serverTcp;
        private RawPair(TcpClient tcp, NetworkStream stream, ServerWebSocket server, TcpClient serverTcp)
        {
            Tcp = tcp; Stream = stream; Server = server; _serverTcp = serverTcp;
        }
        public TcpClient Tcp { get; }
        public NetworkStream Stream { get; }
        public ServerWebSocket Server { get; }

        public static async Task<RawPair> OpenAsync()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            try
            {
                var accepting = AcceptUpgradeAsync(listener);
                var tcp = new TcpClient();
                await tcp.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port, Token());
                var stream = tcp.GetStream();
                var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
                var request = $"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(request), Token());
                var (serverTcp, serverStream) = await accepting.WaitAsync(Timeout);
                var response = new StringBuilder();
                var one = new byte[1];
                while (!response.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
                {
                    if (await stream.ReadAsync(one, Token()) == 0) throw new IOException("server left during the upgrade");
                    response.Append((char)one[0]);
                }
                Assert.StartsWith("HTTP/1.1 101", response.ToString());
                return new RawPair(tcp, stream, new ServerWebSocket(serverStream), serverTcp);
            }
            finally
            {
                listener.Stop();
            }
        }

        public async Task SendMaskedAsync(int opcode, byte[] payload)
        {
            Assert.True(payload.Length <= 125);
            var mask = new byte[] { 0x37, 0xFA, 0x21, 0x3D };
            var frame = new byte[6 + payload.Length];
            frame[0] = (byte)(0x80 | opcode);
            frame[1] = (byte)(0x80 | payload.Length);
            mask.CopyTo(frame, 2);
            for (var i = 0; i < payload.Length; i++) frame[6 + i] = (byte)(payload[i] ^ mask[i % 4]);
            await Stream.WriteAsync(frame, Token());
        }

        public async Task<byte[]> ReadBytesAsync(int count)
        {
            var data = new byte[count];
            await Stream.ReadExactlyAsync(data, Token());
            return data;
        }

        public ValueTask DisposeAsync()
        {
            Server.Dispose();
            Tcp.Dispose();
            _serverTcp.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
