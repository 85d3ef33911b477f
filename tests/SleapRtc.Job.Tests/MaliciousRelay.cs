using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using SleapRtc.WebRtc;

namespace SleapRtc.Job.Tests;

/// <summary>
/// A compromised signaling path, for the channel-binding tests: an HTTP + WebSocket proxy in front of the real server
/// that forwards everything, except that it answers every client offer with a peer connection of its own and offers
/// the worker another one of its own (so the SDPs the two ends see carry the relay's fingerprints and candidates), then
/// bridges the two data channels: a real man in the middle on the data path, with two separate DTLS sessions.
/// It counts what it relayed, so a test can tell "refused" from "never connected".
/// </summary>
internal sealed class MaliciousRelay : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _http = new();
    private readonly Uri _upstream;
    private readonly IPeerConnectionFactory _factory;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<IPeerConnection> _peers = new();
    private readonly Task _accepting;
    private long _clientBinaryBytes;
    private int _bridged;

    private MaliciousRelay(int port, Uri upstream, IPeerConnectionFactory factory)
    {
        Port = port;
        _upstream = upstream;
        _factory = factory;
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _accepting = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }
    public string Url => $"ws://127.0.0.1:{Port}";
    /// <summary>Drop the extension advertisement from what clients discover (the server's word about a worker).</summary>
    public bool HideExtensions { get; init; }
    /// <summary>Let a client in whatever token it registers with (a server that admits an outsider).</summary>
    public string? AdmitWithToken { get; init; }
    /// <summary>Sit in the middle of every offered connection (the default); false relays the SDPs untouched.</summary>
    public bool InterceptChannels { get; init; } = true;

    /// <summary>Connections the relay sat in the middle of (both of its data channels open).</summary>
    public int Bridged => Volatile.Read(ref _bridged);
    /// <summary>Binary bytes (package chunks) the client sent through the relay towards the worker.</summary>
    public long ClientBinaryBytes => Interlocked.Read(ref _clientBinaryBytes);

    /// <summary>Starts a relay in front of the server on <paramref name="upstreamPort"/>, with a transport (and so a DTLS
    /// certificate) of its own: a relay never holds the private key of either end.</summary>
    public static MaliciousRelay Start(int upstreamPort, bool hideExtensions = false, string? admitWithToken = null, bool interceptChannels = true)
    {
        var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return new MaliciousRelay(port, new Uri($"http://127.0.0.1:{upstreamPort}/"), new WebRtc.PeerConnection.RtcPeerConnectionFactory()) 
        {
            HideExtensions = hideExtensions, AdmitWithToken = admitWithToken, InterceptChannels = interceptChannels,
        };
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync().ConfigureAwait(false); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (HttpListenerException) { return; }
            catch (ObjectDisposedException) { return; }
            _ = Task.Run(() => context.Request.IsWebSocketRequest ? RelayWebSocketAsync(context) : RelayHttpAsync(context));
        }
    }

    private async Task RelayHttpAsync(HttpListenerContext context)
    {
        try
        {
            using var request = new HttpRequestMessage(new HttpMethod(context.Request.HttpMethod), new Uri(_upstream, context.Request.RawUrl));
            if (context.Request.HasEntityBody)
            {
                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body).ConfigureAwait(false);
                request.Content = new ByteArrayContent(body.ToArray());
                if (context.Request.ContentType is { } type) request.Content.Headers.TryAddWithoutValidation("Content-Type", type);
            }
            if (context.Request.Headers["Authorization"] is { } authorization) request.Headers.TryAddWithoutValidation("Authorization", authorization);
            using var response = await _http.SendAsync(request, _stop.Token).ConfigureAwait(false);
            var bytes = await response.Content.ReadAsByteArrayAsync(_stop.Token).ConfigureAwait(false);
            context.Response.StatusCode = (int)response.StatusCode;
            if (response.Content.Headers.ContentType is { } contentType) context.Response.ContentType = contentType.ToString();
            await context.Response.OutputStream.WriteAsync(bytes, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception) { context.Response.StatusCode = 502; }
        finally { try { context.Response.Close(); } catch (Exception) { } }
    }

    private async Task RelayWebSocketAsync(HttpListenerContext context)
    {
        WebSocket client;
        try { client = (await context.AcceptWebSocketAsync(null).ConfigureAwait(false)).WebSocket; }
        catch (Exception) { return; }
        using var server = new ClientWebSocket();
        var path = context.Request.RawUrl ?? "/";
        try { await server.ConnectAsync(new Uri($"ws://127.0.0.1:{_upstream.Port}{path}"), _stop.Token).ConfigureAwait(false); }
        catch (Exception) { client.Abort(); return; }
        var bridges = new Dictionary<string, Bridge>();
        var sendToClient = new SemaphoreSlim(1, 1);
        var sendToServer = new SemaphoreSlim(1, 1);
        var up = PumpAsync(client, async message =>
        {
            var type = message["type"]?.GetValue<string>();
            if (type == "register" && AdmitWithToken is { } token) message["token"] = token;
            if (type == "offer" && InterceptChannels && message["target"]?.GetValue<string>() is { } worker && message["sdp"]?.GetValue<string>() is { } clientOffer)
            {
                var bridge = await Bridge.StartAsync(this, clientOffer).ConfigureAwait(false);
                lock (bridges) bridges[worker] = bridge;
                message["sdp"] = bridge.OfferToWorker;
            }
            await SendAsync(server, sendToServer, message).ConfigureAwait(false);
        });
        var down = PumpAsync(server, async message =>
        {
            var type = message["type"]?.GetValue<string>();
            if (type == "answer" && message["sender"]?.GetValue<string>() is { } worker && message["sdp"]?.GetValue<string>() is { } workerAnswer)
            {
                Bridge? bridge;
                lock (bridges) bridges.Remove(worker, out bridge);
                if (bridge is not null) message["sdp"] = await bridge.AcceptWorkerAnswerAsync(workerAnswer).ConfigureAwait(false);
            }
            if (HideExtensions && type == "peer_list" && message["peers"] is JsonArray peers)
                foreach (var peer in peers.OfType<JsonObject>())
                    (peer["metadata"]?["properties"] as JsonObject)?.Remove(Protocol.Jobs.JobExtensions.MetadataProperty);
            await SendAsync(client, sendToClient, message).ConfigureAwait(false);
        });
        await Task.WhenAny(up, down).ConfigureAwait(false);
        client.Abort();
        server.Abort();
    }

    private async Task PumpAsync(WebSocket from, Func<JsonObject, Task> forward)
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (from.State == WebSocketState.Open && !_stop.IsCancellationRequested)
            {
                var result = await from.ReceiveAsync(buffer, _stop.Token).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close) return;
                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage) continue;
                var text = Encoding.UTF8.GetString(message.ToArray());
                message.SetLength(0);
                if (JsonNode.Parse(text) is JsonObject json) await forward(json).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    private static async Task SendAsync(WebSocket to, SemaphoreSlim gate, JsonObject message)
    {
        await gate.WaitAsync().ConfigureAwait(false);
        try { await to.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None).ConfigureAwait(false); }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException) { }
        finally { gate.Release(); }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Close();
        try { await _accepting.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false); } catch (Exception) { }
        List<IPeerConnection> peers;
        lock (_peers) peers = _peers.ToList();
        foreach (var peer in peers) await peer.DisposeAsync().ConfigureAwait(false);
        _http.Dispose();
    }

    /// <summary>One intercepted connection: the relay's answer to the client and its own offer to the worker, channels bridged.</summary>
    private sealed class Bridge
    {
        private readonly MaliciousRelay _relay;
        private readonly IPeerConnection _towardsClient;
        private readonly IPeerConnection _towardsWorker;
        private readonly Forwarder _toWorker;
        private readonly Forwarder _toClient = new(null);
        private string _answerToClient = "";

        private Bridge(MaliciousRelay relay, IPeerConnection towardsClient, IPeerConnection towardsWorker)
        {
            _relay = relay;
            _towardsClient = towardsClient;
            _towardsWorker = towardsWorker;
            _toWorker = new Forwarder(relay);
        }

        public string OfferToWorker { get; private set; } = "";

        public static async Task<Bridge> StartAsync(MaliciousRelay relay, string clientOffer)
        {
            var towardsClient = relay._factory.Create(RoomFixture.Loopback);
            var towardsWorker = relay._factory.Create(RoomFixture.Loopback);
            lock (relay._peers) relay._peers.AddRange(new[] { towardsClient, towardsWorker });
            var bridge = new Bridge(relay, towardsClient, towardsWorker);
            towardsClient.DataChannelOpened += channel =>
            {
                channel.MessageReceived += m => bridge._toWorker.Forward(m);
                channel.Closed += _ => bridge._toWorker.CloseTarget();
                bridge._toClient.SetTarget(channel);
            };
            bridge._answerToClient = await towardsClient.AcceptOfferAsync(clientOffer, CancellationToken.None).ConfigureAwait(false);
            bridge.OfferToWorker = await towardsWorker.CreateOfferAsync(CancellationToken.None).ConfigureAwait(false);
            return bridge;
        }

        public async Task<string> AcceptWorkerAnswerAsync(string workerAnswer)
        {
            await _towardsWorker.AcceptAnswerAsync(workerAnswer, CancellationToken.None).ConfigureAwait(false);
            _ = Task.Run(async () =>
            {
                try
                {
                    var channel = await _towardsWorker.OpenDataChannelAsync("my-data-channel", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
                    channel.MessageReceived += m => _toClient.Forward(m);
                    channel.Closed += _ => _toClient.CloseTarget();
                    _toWorker.SetTarget(channel);
                    Interlocked.Increment(ref _relay._bridged);
                }
                catch (Exception) { _toClient.CloseTarget(); }
            });
            return _answerToClient;
        }
    }

    /// <summary>Messages for one direction, held until that side's channel is open, then passed on as they come.</summary>
    private sealed class Forwarder(MaliciousRelay? countsClientBytes)
    {
        private readonly object _gate = new();
        private readonly List<DataChannelMessage> _held = new();
        private IDataChannel? _target;
        private bool _closed;

        public void Forward(DataChannelMessage message)
        {
            if (countsClientBytes is not null && !message.IsText && !Protocol.Jobs.JobMessages.IsKeepAlive(message.Binary.Span))
                Interlocked.Add(ref countsClientBytes._clientBinaryBytes, message.Binary.Length);
            lock (_gate)
            {
                if (_target is null) _held.Add(message.IsText ? message : new DataChannelMessage(message.Binary.ToArray()));
                else Send(_target, message);
            }
        }

        public void SetTarget(IDataChannel target)
        {
            lock (_gate)
            {
                foreach (var message in _held) Send(target, message);
                _held.Clear();
                _target = target;
                if (_closed) _ = target.CloseAsync(CancellationToken.None);
            }
        }

        public void CloseTarget()
        {
            lock (_gate)
            {
                _closed = true;
                if (_target is { } target) _ = target.CloseAsync(CancellationToken.None).ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
            }
        }

        private static void Send(IDataChannel target, DataChannelMessage message)
        {
            try
            {
                if (message.IsText) target.Send(message.Text!);
                else target.Send(message.Binary.Span);
            }
            catch (Exception) { }
        }
    }
}
