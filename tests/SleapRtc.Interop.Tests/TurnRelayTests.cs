using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using SleapRtc.Interop;
using SleapRtc.WebRtc;
using SleapRtc.WebRtc.Turn;
using Xunit;

namespace SleapRtc.Interop.Tests;

/// <summary>One coturn on 127.0.0.1 (shared-secret auth, UDP/TCP/TLS listeners, its own test CA) for the tests below.</summary>
public sealed class LoopbackCoturn : IAsyncLifetime
{
    public CoturnServer Server { get; private set; } = null!;
    public X509Certificate2Collection TrustedCertificates { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await CoturnServer.StartAsync(new[] { IPAddress.Loopback }, IPAddress.Loopback, null, TimeSpan.FromSeconds(15));
        TrustedCertificates = IceServer.LoadTrustedCertificates(Server.CaCertificatePath)!;
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    public string Url(TurnTransport transport) => transport switch
    {
        TurnTransport.Udp => $"turn:127.0.0.1:{Server.Port}",
        TurnTransport.Tcp => $"turn:127.0.0.1:{Server.Port}?transport=tcp",
        _ => $"turns:127.0.0.1:{Server.TlsPort}",
    };

    public static TurnServerUrl Parse(string url) => TurnServerUrl.TryParse(url, out var parsed) ? parsed! : throw new ArgumentException(url);
}

/// <summary>The TURN client (RFC 8656) and relayed ICE candidates against a real coturn.</summary>
public sealed class TurnRelayTests(LoopbackCoturn coturn) : IClassFixture<LoopbackCoturn>
{
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(20);

    private TurnClientOptions Trusting() => new() { TrustedCertificates = coturn.TrustedCertificates };

    private Task<TurnAllocation> AllocateAsync(TurnTransport transport, string name, TurnClientOptions? options = null)
    {
        var (username, password) = coturn.Server.Credentials(name, TimeSpan.FromMinutes(10));
        return TurnAllocation.AllocateAsync(LoopbackCoturn.Parse(coturn.Url(transport)), username, password, options ?? Trusting(), null, CancellationToken.None);
    }

    [Theory]
    [InlineData(TurnTransport.Udp)]
    [InlineData(TurnTransport.Tcp)]
    [InlineData(TurnTransport.Tls)]
    public async Task Two_allocations_relay_datagrams_by_send_indication_and_then_by_channel(TurnTransport transport)
    {
        using var a = await AllocateAsync(transport, "peer-a").WaitAsync(Step);
        using var b = await AllocateAsync(TurnTransport.Udp, "peer-b").WaitAsync(Step);
        Assert.Equal(IPAddress.Loopback, a.RelayedEndPoint.Address);
        Assert.NotEqual(a.RelayedEndPoint, b.RelayedEndPoint);
        Assert.True(a.Lifetime > TimeSpan.FromMinutes(1), $"lifetime {a.Lifetime}");

        var atB = new System.Collections.Concurrent.BlockingCollection<(IPEndPoint Peer, byte[] Data)>();
        var atA = new System.Collections.Concurrent.BlockingCollection<(IPEndPoint Peer, byte[] Data)>();
        b.DataReceived = (peer, data) => atB.Add((peer, data.ToArray()));
        a.DataReceived = (peer, data) => atA.Add((peer, data.ToArray()));
        await b.CreatePermissionAsync(a.RelayedEndPoint.Address, CancellationToken.None).WaitAsync(Step);

        // Before any permission of a's own: Send queues until a's permission for b is installed (Send indication path).
        var first = RandomNumberGenerator.GetBytes(1001);
        a.Send(b.RelayedEndPoint, first);
        Assert.True(atB.TryTake(out var got, Step), "b got nothing through the relay");
        Assert.Equal(a.RelayedEndPoint, got.Peer);
        Assert.Equal(first, got.Data);

        // ChannelData from here on, both ways; odd lengths exercise the 4-byte padding over TCP/TLS.
        await a.BindChannelAsync(b.RelayedEndPoint, CancellationToken.None).WaitAsync(Step);
        await b.BindChannelAsync(a.RelayedEndPoint, CancellationToken.None).WaitAsync(Step);
        for (var i = 0; i < 20; i++)
        {
            var payload = RandomNumberGenerator.GetBytes(1 + i * 61);
            a.Send(b.RelayedEndPoint, payload);
            Assert.True(atB.TryTake(out got, Step));
            Assert.Equal(payload, got.Data);
            b.Send(a.RelayedEndPoint, payload);
            Assert.True(atA.TryTake(out got, Step));
            Assert.Equal(b.RelayedEndPoint, got.Peer);
            Assert.Equal(payload, got.Data);
        }
    }

    [Fact]
    public async Task Wrong_and_expired_credentials_are_refused_with_a_clear_reason()
    {
        var url = LoopbackCoturn.Parse(coturn.Url(TurnTransport.Udp));
        var (username, _) = coturn.Server.Credentials("peer", TimeSpan.FromMinutes(10));
        var wrong = await Assert.ThrowsAsync<TurnException>(() =>
            TurnAllocation.AllocateAsync(url, username, "not-the-password", null, null, CancellationToken.None).WaitAsync(Step));
        Assert.Equal(401, wrong.ErrorCode);
        Assert.Contains("username or password is wrong", wrong.Message);
        Assert.Contains(url.Url, wrong.Message);

        var (expiredUser, expiredPassword) = TurnSharedSecret.CreateCredentials(coturn.Server.Secret, "peer", DateTimeOffset.UtcNow.AddMinutes(-5));
        var expired = await Assert.ThrowsAsync<TurnException>(() =>
            TurnAllocation.AllocateAsync(url, expiredUser, expiredPassword, null, null, CancellationToken.None).WaitAsync(Step));
        Assert.Equal(401, expired.ErrorCode);
        Assert.Contains("expired", expired.Message);
    }

    [Fact]
    public async Task Tls_checks_the_server_certificate_and_trusts_only_the_configured_ca()
    {
        var untrusted = await Assert.ThrowsAsync<TurnException>(() => AllocateAsync(TurnTransport.Tls, "peer", new TurnClientOptions()).WaitAsync(Step));
        Assert.Contains("not trusted", untrusted.Message);

        // A different CA in the trusted file does not make coturn's certificate acceptable.
        using var otherKey = ECDsa.Create();
        using var otherCa = new CertificateRequest("CN=other", otherKey, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var wrongCa = await Assert.ThrowsAsync<TurnException>(() =>
            AllocateAsync(TurnTransport.Tls, "peer", new TurnClientOptions { TrustedCertificates = new X509Certificate2Collection(otherCa) }).WaitAsync(Step));
        Assert.Contains("not trusted", wrongCa.Message);

        // The right CA, but a URL host the certificate is not issued for: refused (the name check is never relaxed).
        var (username, password) = coturn.Server.Credentials("peer", TimeSpan.FromMinutes(10));
        var misnamed = LoopbackCoturn.Parse($"turns:127.0.0.2:{coturn.Server.TlsPort}");
        await Assert.ThrowsAnyAsync<Exception>(() => TurnAllocation.AllocateAsync(misnamed, username, password, Trusting(), null, CancellationToken.None).WaitAsync(Step));
    }

    [Fact]
    public async Task Allocation_permission_and_channel_outlive_short_lifetimes_and_stale_nonces()
    {
        // A coturn of its own whose allocations live 2 s, permissions 3 s, channels 4 s and nonces 1 s: only the
        // client's refreshes (with 438 stale-nonce retries) keep the channel working for 6 s.
        await using var shortLived = await CoturnServer.StartAsync(new[] { IPAddress.Loopback }, IPAddress.Loopback, null, TimeSpan.FromSeconds(15),
            new[] { "max-allocate-lifetime=2", "permission-lifetime=3", "channel-lifetime=4", "stale-nonce=1" });
        var url = LoopbackCoturn.Parse($"turn:127.0.0.1:{shortLived.Port}");
        var options = new TurnClientOptions { PermissionRefreshInterval = TimeSpan.FromSeconds(2), ChannelRefreshInterval = TimeSpan.FromSeconds(3) };
        async Task<TurnAllocation> Allocate(string name)
        {
            var (username, password) = shortLived.Credentials(name, TimeSpan.FromMinutes(10));
            return await TurnAllocation.AllocateAsync(url, username, password, options, null, CancellationToken.None).WaitAsync(Step);
        }
        var a = await Allocate("refresh-a");
        using var b = await Allocate("refresh-b");
        Assert.Equal(TimeSpan.FromSeconds(2), a.Lifetime);
        var received = new System.Collections.Concurrent.BlockingCollection<byte[]>();
        b.DataReceived = (_, data) => received.Add(data.ToArray());
        await a.BindChannelAsync(b.RelayedEndPoint, CancellationToken.None).WaitAsync(Step);
        await b.BindChannelAsync(a.RelayedEndPoint, CancellationToken.None).WaitAsync(Step);
        var failures = new List<Exception>();
        a.Failed += failures.Add;
        b.Failed += failures.Add;
        for (var second = 0; second < 6; second++)
        {
            await Task.Delay(1000);
            a.Send(b.RelayedEndPoint, new[] { (byte)second });
            Assert.True(received.TryTake(out var data, TimeSpan.FromSeconds(2)), $"nothing relayed after {second + 1} s; coturn log:\n{shortLived.Log}");
            Assert.Equal(new[] { (byte)second }, data);
        }
        Assert.Empty(failures);
        Assert.True(a.Refreshes >= 4, $"refreshes {a.Refreshes}");

        // Lifetime 0 on disposal: coturn deletes the allocation at once (its log says so) instead of after 2 s.
        a.Dispose();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(1);
        while (!shortLived.Log.Contains("lifetime=0", StringComparison.Ordinal) && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.True(a.IsDisposed);
        Assert.True(shortLived.Log.Contains("lifetime=0", StringComparison.Ordinal), shortLived.Log);
    }

    [Theory]
    [InlineData("turn:127.0.0.1:{0}")]
    [InlineData("turn:127.0.0.1:{0}?transport=tcp")]
    [InlineData("turns:127.0.0.1:{1}")]
    public async Task Relay_only_peers_connect_move_data_through_coturn_and_report_the_relayed_pair(string urlFormat)
    {
        var url = string.Format(System.Globalization.CultureInfo.InvariantCulture, urlFormat, coturn.Server.Port, coturn.Server.TlsPort);
        PeerConnectionOptions Options(string name)
        {
            var (username, password) = coturn.Server.Credentials(name, TimeSpan.FromMinutes(10));
            return new PeerConnectionOptions
            {
                RelayOnly = true,
                IceServers = new[] { new IceServer(new[] { url }, username, password) },
                TurnTrustedCertificates = coturn.TrustedCertificates,
            };
        }
        var factory = ManagedStack.CreateFactory();
        await using var offerer = factory.Create(Options("offerer"));
        await using var answerer = factory.Create(Options("answerer"));
        var (local, remote) = await ConnectAsync(offerer, answerer);

        var payload = RandomNumberGenerator.GetBytes(3_000_000);
        var received = new MemoryStream();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        remote.MessageReceived += m => { lock (received) { received.Write(m.Binary.Span); if (received.Length >= payload.Length) done.TrySetResult(); } };
        for (var offset = 0; offset < payload.Length; offset += 60000)
            await local.SendAsync(payload.AsMemory(offset, Math.Min(60000, payload.Length - offset)), 1 << 20, CancellationToken.None);
        await done.Task.WaitAsync(Step);
        Assert.Equal(payload, received.ToArray());

        foreach (var peer in new[] { offerer, answerer })
        {
            var pair = peer.SelectedCandidatePair;
            Assert.NotNull(pair);
            Assert.Equal("relay", pair!.LocalType);
            Assert.Equal("relay", pair.RemoteType);
            Assert.True(pair.IsRelayed);
        }
        var expectedProtocol = url.StartsWith("turns:", StringComparison.Ordinal) ? "tls" : url.Contains("tcp", StringComparison.Ordinal) ? "tcp" : "udp";
        Assert.Equal(expectedProtocol, offerer.SelectedCandidatePair!.RelayProtocol);
        Assert.Contains($"(turn {expectedProtocol})", offerer.SelectedCandidatePair.ToString());
    }

    [Fact]
    public async Task With_a_working_direct_path_the_relay_is_gathered_but_not_used()
    {
        PeerConnectionOptions Options(string name)
        {
            var (username, password) = coturn.Server.Credentials(name, TimeSpan.FromMinutes(10));
            return new PeerConnectionOptions
            {
                IncludeLoopback = true,
                LocalAddresses = new[] { IPAddress.Loopback },
                IceServers = new[] { new IceServer(new[] { coturn.Url(TurnTransport.Udp) }, username, password) },
            };
        }
        var factory = ManagedStack.CreateFactory();
        await using var offerer = factory.Create(Options("offerer"));
        await using var answerer = factory.Create(Options("answerer"));
        var offer = await offerer.CreateOfferAsync(CancellationToken.None).WaitAsync(Step);
        Assert.Contains("typ relay", offer);
        Assert.Contains("typ host", offer);
        var opened = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        answerer.DataChannelOpened += c => opened.TrySetResult(c);
        var answer = await answerer.AcceptOfferAsync(offer, CancellationToken.None).WaitAsync(Step);
        await offerer.AcceptAnswerAsync(answer, CancellationToken.None).WaitAsync(Step);
        await offerer.OpenDataChannelAsync("data", CancellationToken.None).WaitAsync(Step);
        await opened.Task.WaitAsync(Step);
        Assert.Equal("host", offerer.SelectedCandidatePair!.LocalType);
        Assert.Equal("host", offerer.SelectedCandidatePair.RemoteType);
        Assert.False(answerer.SelectedCandidatePair!.IsRelayed);
    }

    [Fact]
    public async Task Refused_credentials_make_the_connection_fail_with_the_turn_reason()
    {
        var factory = new WebRtc.PeerConnection.RtcPeerConnectionFactory(new WebRtc.PeerConnection.RtcPeerConnectionSettings { IceConnectTimeout = TimeSpan.FromSeconds(2) });
        var options = new PeerConnectionOptions
        {
            RelayOnly = true,
            IceServers = new[] { new IceServer(new[] { coturn.Url(TurnTransport.Udp) }, "1:nobody", "wrong") },
        };
        await using var offerer = factory.Create(options);
        await using var answerer = factory.Create(options);
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        offerer.StateChanged += s => { if (s == PeerConnectionState.Failed) failed.TrySetResult(); };
        var offer = await offerer.CreateOfferAsync(CancellationToken.None).WaitAsync(Step);
        Assert.DoesNotContain("typ relay", offer);
        var answer = await answerer.AcceptOfferAsync(offer, CancellationToken.None).WaitAsync(Step);
        await offerer.AcceptAnswerAsync(answer, CancellationToken.None).WaitAsync(Step);
        var error = await Assert.ThrowsAnyAsync<IOException>(() => offerer.OpenDataChannelAsync("data", CancellationToken.None).WaitAsync(Step));
        Assert.Contains("no working candidate pair", error.Message);
        Assert.Contains("credentials expired", error.Message); // "1:nobody" carries an expiry in 1970
        Assert.Contains(coturn.Url(TurnTransport.Udp), error.Message);
    }

    internal static async Task<(IDataChannel Local, IDataChannel Remote)> ConnectAsync(IPeerConnection offerer, IPeerConnection answerer)
    {
        var opened = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        answerer.DataChannelOpened += c => opened.TrySetResult(c);
        var offer = await offerer.CreateOfferAsync(CancellationToken.None).WaitAsync(Step);
        var answer = await answerer.AcceptOfferAsync(offer, CancellationToken.None).WaitAsync(Step);
        await offerer.AcceptAnswerAsync(answer, CancellationToken.None).WaitAsync(Step);
        var local = await offerer.OpenDataChannelAsync("data", CancellationToken.None).WaitAsync(Step);
        return (local, await opened.Task.WaitAsync(Step));
    }
}

/// <summary>Cross-check: libwebrtc (@roamhq/wrtc), relay-only through the same coturn, and our relay-only peer.</summary>
public sealed class LibWebRtcThroughCoturnTests(LoopbackCoturn coturn) : IClassFixture<LoopbackCoturn>
{
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("udp")]
    [InlineData("tcp")]
    public async Task Libwebrtc_and_our_stack_both_relay_only_exchange_data_through_coturn(string ourTransport)
    {
        var (theirUser, theirPassword) = coturn.Server.Credentials("libwebrtc", TimeSpan.FromMinutes(10));
        var iceServers = System.Text.Json.JsonSerializer.Serialize(new[]
        {
            new { urls = new[] { $"turn:127.0.0.1:{coturn.Server.Port}" }, username = theirUser, credential = theirPassword },
        });
        var command = FixtureCatalog.Node("wrtc").WithEnvironment("PEER_ICE_SERVERS", iceServers).WithEnvironment("PEER_ICE_POLICY", "relay");
        await using var libwebrtc = await FixtureProcess.StartAsync("wrtc", command, network: null, Step);

        var (ourUser, ourPassword) = coturn.Server.Credentials("ours", TimeSpan.FromMinutes(10));
        await using var ours = ManagedStack.CreateFactory().Create(new PeerConnectionOptions
        {
            RelayOnly = true,
            IceServers = new[] { new IceServer(new[] { coturn.Url(ourTransport == "tcp" ? TurnTransport.Tcp : TurnTransport.Udp) }, ourUser, ourPassword) },
        });
        var opened = new TaskCompletionSource<IDataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        ours.DataChannelOpened += c => opened.TrySetResult(c);

        libwebrtc.Send(new { cmd = "start", label = "data" });
        var offer = (string)(await libwebrtc.WaitForAsync("sdp", Step))["sdp"]!;
        Assert.Contains("typ relay", offer);
        Assert.DoesNotContain("typ host", offer);
        var answer = await ours.AcceptOfferAsync(offer, CancellationToken.None).WaitAsync(Step);
        libwebrtc.Send(new { cmd = "sdp", type = "answer", sdp = answer });
        await libwebrtc.WaitForAsync("open", Step);
        var channel = await opened.Task.WaitAsync(Step);

        const int total = 2_000_000;
        long received = 0;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        channel.MessageReceived += m => { if (!m.IsText && Interlocked.Add(ref received, m.Binary.Length) >= total) all.TrySetResult(); };
        libwebrtc.Send(new { cmd = "send", bytes = total });
        await all.Task.WaitAsync(Step);
        Assert.Equal(total, Interlocked.Read(ref received));

        var pair = ours.SelectedCandidatePair!;
        Assert.Equal("relay", pair.LocalType);
        Assert.Equal("relay", pair.RemoteType);
        Assert.Equal(ourTransport, pair.RelayProtocol);
    }
}
