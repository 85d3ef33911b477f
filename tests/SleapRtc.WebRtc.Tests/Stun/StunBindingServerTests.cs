using System.Net;
using System.Net.Sockets;
using SleapRtc.WebRtc.Stun;
using Xunit;

namespace SleapRtc.WebRtc.Tests.Stun;

/// <summary>The one STUN Binding responder: the signaling server runs it on its port, ICE tests use it on loopback.</summary>
public class StunBindingServerTests
{
    [Fact]
    public void Answers_a_binding_request_with_the_source_as_xor_mapped_address_software_and_fingerprint()
    {
        var request = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, StunMessageBuilder.NewTransactionId()).AddFingerprint();
        var source = new IPEndPoint(IPAddress.Parse("192.0.2.7"), 40000);
        var answer = StunBindingServer.Answer(request.Span, source)!.ToArray();
        Assert.True(StunMessage.TryParse(answer, out var parsed));
        Assert.Equal(StunClass.SuccessResponse, parsed!.Class);
        Assert.Equal(request.TransactionId, parsed.TransactionId);
        Assert.Equal(source, parsed.XorMappedAddress);
        Assert.Equal("SleapRtc", parsed.Software);
        Assert.True(parsed.HasFingerprint);
    }

    [Fact]
    public void A_dual_mode_socket_s_ipv4_sender_is_answered_with_its_ipv4_address()
    {
        var request = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, StunMessageBuilder.NewTransactionId()).ToArray();
        var mapped = new IPEndPoint(IPAddress.Parse("192.0.2.7").MapToIPv6(), 40000);
        Assert.True(StunMessage.TryParse(StunBindingServer.Answer(request, mapped)!.Span, out var parsed));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.0.2.7"), 40000), parsed!.XorMappedAddress);
    }

    [Fact]
    public void Everything_but_a_well_formed_binding_request_is_ignored()
    {
        var source = new IPEndPoint(IPAddress.Loopback, 1);
        var id = StunMessageBuilder.NewTransactionId();
        Assert.Null(StunBindingServer.Answer(new byte[20], source));
        Assert.Null(StunBindingServer.Answer(new StunMessageBuilder(StunMethod.Binding, StunClass.SuccessResponse, id).ToArray(), source));
        Assert.Null(StunBindingServer.Answer(new StunMessageBuilder(StunMethod.Binding, StunClass.Indication, id).ToArray(), source));
        var badFingerprint = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, id).AddFingerprint().ToArray();
        badFingerprint[^1] ^= 0x80;
        Assert.Null(StunBindingServer.Answer(badFingerprint, source));
        var truncated = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, id).AddSoftware("x").ToArray()[..22];
        Assert.Null(StunBindingServer.Answer(truncated, source));
    }

    [Fact]
    public void Serves_on_loopback_and_keeps_serving_after_garbage()
    {
        using var server = new StunBindingServer(new IPEndPoint(IPAddress.Loopback, 0));
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        client.ReceiveTimeout = 5000;
        client.SendTo(new byte[] { 0, 1, 0, 0 }, server.LocalEndPoint);
        client.SendTo(new byte[3000], server.LocalEndPoint);
        var request = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, StunMessageBuilder.NewTransactionId());
        client.SendTo(request.Span, SocketFlags.None, server.LocalEndPoint);
        var buffer = new byte[1500];
        int length = client.Receive(buffer);
        Assert.True(StunMessage.TryParse(buffer.AsSpan(0, length), out var parsed));
        Assert.Equal(request.TransactionId, parsed!.TransactionId);
        Assert.Equal(client.LocalEndPoint, parsed.XorMappedAddress);
        Assert.Equal(1, server.RequestsAnswered);
    }
}
