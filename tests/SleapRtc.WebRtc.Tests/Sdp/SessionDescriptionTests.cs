using SleapRtc.WebRtc.Sdp;
using Xunit;

namespace SleapRtc.WebRtc.Tests.Sdp;

public class SessionDescriptionTests
{
    // Shaped after the Chromium 156 data-only offer described in webrtc-interop.md §5.
    private const string ChromiumOffer =
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=extmap-allow-mixed\r\n" +
        "a=msid-semantic: WMS\r\nm=application 48161 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 10.99.0.1\r\n" +
        "a=candidate:24920311 1 udp 2113937151 10.99.0.1 48161 typ host generation 0 network-cost 999\r\n" +
        "a=ice-ufrag:EpwW\r\na=ice-pwd:q1w2e3r4t5y6u7i8o9p0a1s2\r\na=ice-options:trickle\r\n" +
        "a=fingerprint:sha-256 93:25:4E:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D\r\n" +
        "a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";

    // aiortc 1.4's legacy data-channel form, candidates inline, session-level extras.
    private const string AiortcLegacyOffer =
        "v=0\r\no=- 3912345678 3912345678 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic:WMS *\r\n" +
        "m=application 39000 DTLS/SCTP 5000\r\nc=IN IP4 127.0.0.1\r\na=mid:0\r\na=sctpmap:5000 webrtc-datachannel 65535\r\n" +
        "a=max-message-size:65536\r\n" +
        "a=candidate:6815297761cbc8ea75bc22ec2d6c6b3d 1 udp 2130706431 127.0.0.1 39000 typ host\r\n" +
        "a=candidate:aa3c1d8e36ff3a2ab5c0bbb1a33e4f25 1 udp 1694498815 203.0.113.7 39000 typ srflx raddr 127.0.0.1 rport 39000\r\n" +
        "a=end-of-candidates\r\na=ice-ufrag:Bp9n\r\na=ice-pwd:uQOT1vQwHgDOE3LgiyZEvO\r\n" +
        "a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n" +
        "a=setup:actpass\r\n";

    // libdatachannel-style answer: LF line ends, session-level fingerprint, ice-options ice2, tls-id.
    private const string LibdatachannelAnswer =
        "v=0\no=rtc 1234 0 IN IP4 127.0.0.1\ns=-\nt=0 0\na=group:BUNDLE 0\na=msid-semantic:WMS *\na=setup:active\n" +
        "a=ice-ufrag:x1Y2\na=ice-pwd:abcdefghijklmnopqrstuv\na=ice-options:ice2,trickle\n" +
        "a=fingerprint:sha-256 01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F:20\n" +
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\nc=IN IP4 0.0.0.0\na=mid:0\na=sendrecv\na=tls-id:ABCDEF\n" +
        "a=sctp-port:5000\na=max-message-size:262144\n";

    [Fact]
    public void Parses_chromium_offer()
    {
        var sdp = SessionDescription.Parse(ChromiumOffer);
        Assert.False(sdp.LegacySctpMap);
        Assert.Equal("EpwW", sdp.IceUfrag);
        Assert.Equal("q1w2e3r4t5y6u7i8o9p0a1s2", sdp.IcePwd);
        Assert.True(sdp.IceOptionTrickle);
        Assert.Equal(SdpSetup.ActPass, sdp.Setup);
        Assert.Equal("0", sdp.Mid);
        Assert.Equal(5000, sdp.SctpPort);
        Assert.Equal(262144, sdp.EffectiveMaxMessageSize);
        Assert.Equal(32, sdp.Fingerprint.Length);
        Assert.Equal(0x93, sdp.Fingerprint[0]);
        var candidate = Assert.Single(sdp.Candidates);
        Assert.Equal("10.99.0.1", candidate.Address);
        Assert.Equal(48161, candidate.Port);
        Assert.Equal(2113937151u, candidate.Priority);
        Assert.Equal("host", candidate.Type);
        Assert.False(sdp.EndOfCandidates);
    }

    [Fact]
    public void Parses_aiortc_legacy_offer_and_answers_in_legacy_form()
    {
        var sdp = SessionDescription.Parse(AiortcLegacyOffer);
        Assert.True(sdp.LegacySctpMap);
        Assert.Equal(5000, sdp.SctpPort);
        Assert.Equal(65536, sdp.EffectiveMaxMessageSize);
        Assert.Equal(2, sdp.Candidates.Count);
        Assert.Equal("srflx", sdp.Candidates[1].Type);
        Assert.Equal("127.0.0.1", sdp.Candidates[1].RelatedAddress);
        Assert.Equal(39000, sdp.Candidates[1].RelatedPort);
        Assert.True(sdp.EndOfCandidates);

        var answer = new SessionDescription
        {
            IceUfrag = "abcd", IcePwd = "0123456789012345678901", Fingerprint = new byte[32],
            Setup = SdpSetup.Active, LegacySctpMap = sdp.LegacySctpMap, SctpPort = sdp.SctpPort, MaxMessageSize = 262144,
            EndOfCandidates = true,
        };
        answer.Candidates.Add(new SdpCandidate("1", 1, "udp", 2130706431, "127.0.0.1", 40000, "host"));
        var text = answer.ToSdp();
        Assert.Contains("m=application 40000 DTLS/SCTP 5000\r\n", text, StringComparison.Ordinal);
        Assert.Contains("a=sctpmap:5000 webrtc-datachannel 65535\r\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("a=sctp-port", text, StringComparison.Ordinal);
        var reparsed = SessionDescription.Parse(text);
        Assert.True(reparsed.LegacySctpMap);
        Assert.Equal(SdpSetup.Active, reparsed.Setup);
    }

    [Fact]
    public void Parses_session_level_attributes_and_lf_line_ends()
    {
        var sdp = SessionDescription.Parse(LibdatachannelAnswer);
        Assert.Equal(SdpSetup.Active, sdp.Setup);
        Assert.Equal("x1Y2", sdp.IceUfrag);
        Assert.Equal(0x20, sdp.Fingerprint[31]);
        Assert.Equal("ABCDEF", sdp.TlsId);
        Assert.True(sdp.IceOptionTrickle);
        Assert.Empty(sdp.Candidates);
    }

    [Fact]
    public void Modern_form_round_trips()
    {
        var original = SessionDescription.Parse(ChromiumOffer);
        original.EndOfCandidates = true;
        var text = original.ToSdp();
        Assert.Contains("m=application 48161 UDP/DTLS/SCTP webrtc-datachannel\r\n", text, StringComparison.Ordinal);
        Assert.Contains("c=IN IP4 10.99.0.1\r\n", text, StringComparison.Ordinal);
        Assert.Contains("a=fingerprint:sha-256 93:25:4E:01", text, StringComparison.Ordinal);
        var again = SessionDescription.Parse(text);
        Assert.Equal(original.Fingerprint, again.Fingerprint);
        Assert.Equal(original.Candidates, again.Candidates);
        Assert.Equal(original.MaxMessageSize, again.MaxMessageSize);
        Assert.True(again.EndOfCandidates);
    }

    [Theory]
    [InlineData("v=0\r\ns=-\r\n")] // no m=application
    [InlineData("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:abcd\r\n")] // no pwd/fingerprint
    [InlineData("v=0\r\nm=application 9 RTP/AVP 0\r\n")]
    public void Rejects_sessions_without_what_data_channels_need(string text)
    {
        Assert.Throws<SdpException>(() => SessionDescription.Parse(text));
    }

    [Fact]
    public void Media_sections_other_than_application_are_ignored()
    {
        var withAudio = ChromiumOffer.Replace("m=application", "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio\r\nm=application", StringComparison.Ordinal);
        // The audio section comes first here, so the application section is still found and its mid kept.
        var sdp = SessionDescription.Parse(withAudio);
        Assert.Equal("0", sdp.Mid);
    }

    [Fact]
    public void Candidate_line_parsing_skips_extension_tokens()
    {
        Assert.True(SdpCandidate.TryParse("a=candidate:1 1 UDP 2122260223 192.168.1.5 53421 typ host generation 0 ufrag EpwW network-id 1", out var c));
        Assert.Equal("udp", c!.Transport);
        Assert.Equal("candidate:1 1 udp 2122260223 192.168.1.5 53421 typ host", c.ToString());
        Assert.False(SdpCandidate.TryParse("candidate:1 1 udp x 1.2.3.4 5 typ host", out _));
    }
}
