using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using SleapRtc.WebRtc.Ice;
using SleapRtc.WebRtc.Stun;
using Xunit;

namespace SleapRtc.WebRtc.Tests.Ice;

public class IceAgentTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    internal static IceAgentOptions LoopbackOptions(TimeSpan? consentInterval = null, TimeSpan? consentTimeout = null) => new()
    {
        LocalAddresses = new[] { IPAddress.Loopback },
        ConsentInterval = consentInterval ?? TimeSpan.FromSeconds(5),
        ConsentTimeout = consentTimeout ?? TimeSpan.FromSeconds(30),
    };

    private static Task<IceConnectionState> WaitForState(IceAgent agent, IceConnectionState wanted)
    {
        var completion = new TaskCompletionSource<IceConnectionState>(TaskCreationOptions.RunContinuationsAsynchronously);
        agent.StateChanged += state =>
        {
            if (state == wanted || state == IceConnectionState.Failed) completion.TrySetResult(state);
        };
        if (agent.State == wanted) completion.TrySetResult(wanted);
        return completion.Task;
    }

    /// <summary>Exchanges credentials and candidates the way the SDP offer/answer would, then starts both.</summary>
    private static async Task ConnectAsync(IceAgent offerer, IceAgent answerer)
    {
        var offerCandidates = await offerer.GatherAsync(default);
        var answerCandidates = await answerer.GatherAsync(default);
        var a = WaitForState(offerer, IceConnectionState.Connected);
        var b = WaitForState(answerer, IceConnectionState.Connected);
        answerer.SetRemoteDescription(offerer.LocalUfrag, offerer.LocalPassword, offerCandidates);
        answerer.Start();
        offerer.SetRemoteDescription(answerer.LocalUfrag, answerer.LocalPassword, answerCandidates);
        offerer.Start();
        Assert.Equal(IceConnectionState.Connected, await a.WaitAsync(Timeout));
        Assert.Equal(IceConnectionState.Connected, await b.WaitAsync(Timeout));
    }

    [Fact]
    public async Task Agents_connect_over_loopback_and_carry_dtls_range_datagrams()
    {
        using var offerer = new IceAgent(LoopbackOptions(), controlling: true);
        using var answerer = new IceAgent(LoopbackOptions(), controlling: false);
        var received = new BlockingCollection<byte[]>();
        answerer.DtlsPacketReceived = d => received.Add(d.ToArray());
        var stopwatch = Stopwatch.StartNew();
        await ConnectAsync(offerer, answerer);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2), $"connect took {stopwatch.ElapsedMilliseconds} ms");
        Assert.Equal(answerer.SelectedLocalEndPoint, offerer.SelectedRemoteEndPoint);

        var record = new byte[] { 23, 0xFE, 0xFD, 1, 2, 3 };
        offerer.Send(record);
        Assert.True(received.TryTake(out var got, Timeout));
        Assert.Equal(record, got);
        // Bytes outside the DTLS range (RFC 7983) are not handed up.
        offerer.Send(new byte[] { 200, 1, 2 });
        offerer.Send(new byte[] { 22, 9 });
        Assert.True(received.TryTake(out got, Timeout));
        Assert.Equal(new byte[] { 22, 9 }, got);
    }

    [Fact]
    public async Task Role_conflict_is_repaired_when_both_think_they_control()
    {
        using var first = new IceAgent(LoopbackOptions(), controlling: true);
        using var second = new IceAgent(LoopbackOptions(), controlling: true);
        await ConnectAsync(first, second);
        Assert.NotEqual(first.IsControlling, second.IsControlling);
        Assert.Equal(1, first.RoleSwitches + second.RoleSwitches);
        // The agent with the larger tie-breaker keeps control (RFC 8445 §7.3.1.1).
        Assert.Equal(first.TieBreaker > second.TieBreaker, first.IsControlling);
    }

    [Fact]
    public async Task Role_conflict_is_repaired_when_both_think_they_are_controlled()
    {
        using var first = new IceAgent(LoopbackOptions(), controlling: false);
        using var second = new IceAgent(LoopbackOptions(), controlling: false);
        await ConnectAsync(first, second);
        Assert.NotEqual(first.IsControlling, second.IsControlling);
        Assert.Equal(first.TieBreaker > second.TieBreaker, first.IsControlling);
    }

    [Fact]
    public async Task Consent_loss_is_detected_when_the_peer_vanishes()
    {
        var options = LoopbackOptions(TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(800));
        using var survivor = new IceAgent(options, controlling: true);
        var vanishing = new IceAgent(options, controlling: false);
        await ConnectAsync(survivor, vanishing);
        // Consent keeps holding while the peer answers.
        await Task.Delay(1200);
        Assert.Equal(IceConnectionState.Connected, survivor.State);
        var failed = WaitForState(survivor, IceConnectionState.Failed);
        var stopwatch = Stopwatch.StartNew();
        vanishing.Dispose();
        Assert.Equal(IceConnectionState.Failed, await failed.WaitAsync(Timeout));
        Assert.InRange(stopwatch.Elapsed, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task Checks_without_valid_integrity_are_not_answered()
    {
        using var agent = new IceAgent(LoopbackOptions(), controlling: false);
        var candidates = await agent.GatherAsync(default);
        var target = new IPEndPoint(IPAddress.Parse(candidates[0].Address), candidates[0].Port);
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        probe.ReceiveTimeout = 300;

        byte[] Check(string password) => new StunMessageBuilder(StunMethod.Binding, StunClass.Request, StunMessageBuilder.NewTransactionId())
            .AddUsername($"{agent.LocalUfrag}:zzzz").AddPriority(1).AddIceControlling(1)
            .AddMessageIntegrity(Encoding.UTF8.GetBytes(password)).AddFingerprint().ToArray();

        var buffer = new byte[1500];
        probe.SendTo(Check("not-the-password-at-all"), target);
        probe.SendTo(new StunMessageBuilder(StunMethod.Binding, StunClass.Request, StunMessageBuilder.NewTransactionId()).AddFingerprint().ToArray(), target);
        Assert.Throws<SocketException>(() => probe.Receive(buffer));

        var valid = Check(agent.LocalPassword);
        probe.SendTo(valid, target);
        var length = probe.Receive(buffer);
        Assert.True(StunMessage.TryParse(buffer.AsSpan(0, length), out var response));
        Assert.Equal(StunClass.SuccessResponse, response!.Class);
        Assert.True(response.VerifyMessageIntegrity(buffer.AsSpan(0, length), Encoding.UTF8.GetBytes(agent.LocalPassword)));
        Assert.Equal(probe.LocalEndPoint, response.XorMappedAddress);
    }

    [Fact]
    public async Task Gathering_queries_the_configured_stun_server_quickly()
    {
        using var server = new StunBindingServer(new IPEndPoint(IPAddress.Loopback, 0));
        using var agent = new IceAgent(new IceAgentOptions
        {
            LocalAddresses = new[] { IPAddress.Loopback },
            StunServers = new[] { $"stun:127.0.0.1:{server.LocalEndPoint.Port}" },
        }, controlling: true);
        var stopwatch = Stopwatch.StartNew();
        var candidates = await agent.GatherAsync(default);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromMilliseconds(900), $"gathering took {stopwatch.ElapsedMilliseconds} ms");
        // One query, or a retransmission or two when a loaded box answers after the first STUN timeout (seen in CI).
        Assert.InRange(server.RequestsAnswered, 1, 3);
        // Without NAT the mapped address is the host address, so no redundant srflx candidate is added.
        var host = Assert.Single(candidates);
        Assert.Equal("host", host.Type);
    }

    [Fact]
    public void Stun_urls_parse()
    {
        Assert.Equal(("10.0.0.1", 3478), IceAgent.ParseStunUrl("stun:10.0.0.1"));
        Assert.Equal(("example.org", 19302), IceAgent.ParseStunUrl("stun:example.org:19302"));
        Assert.Null(IceAgent.ParseStunUrl("turn:example.org"));
    }

    [Fact]
    public async Task Trickled_candidate_alone_is_enough_to_connect()
    {
        using var offerer = new IceAgent(LoopbackOptions(), controlling: true);
        using var answerer = new IceAgent(LoopbackOptions(), controlling: false);
        var offerCandidates = await offerer.GatherAsync(default);
        var answerCandidates = await answerer.GatherAsync(default);
        var connected = WaitForState(offerer, IceConnectionState.Connected);
        answerer.SetRemoteDescription(offerer.LocalUfrag, offerer.LocalPassword, Array.Empty<SleapRtc.WebRtc.Sdp.SdpCandidate>());
        answerer.Start();
        offerer.SetRemoteDescription(answerer.LocalUfrag, answerer.LocalPassword, Array.Empty<SleapRtc.WebRtc.Sdp.SdpCandidate>());
        offerer.Start();
        offerer.AddRemoteCandidate(answerCandidates[0]);
        // The answerer learns the offerer as a peer-reflexive candidate from its checks.
        Assert.Equal(IceConnectionState.Connected, await connected.WaitAsync(Timeout));
        Assert.DoesNotContain(offerCandidates, c => c.Type != "host");
    }
}
