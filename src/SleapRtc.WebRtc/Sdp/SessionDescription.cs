using System.Globalization;
using System.Text;

namespace SleapRtc.WebRtc.Sdp;

/// <summary>DTLS role negotiation attribute (RFC 8842 §5.2, RFC 4145): active = DTLS client.</summary>
public enum SdpSetup { ActPass, Active, Passive, HoldConn }

/// <summary>Raised when an SDP lacks what a data-channel session needs or is malformed.</summary>
public sealed class SdpException(string message) : FormatException(message);

/// <summary>
/// A data-channel-only session: one m=application section, bundled. Parses what Chromium, libwebrtc,
/// libdatachannel and aiortc produce (unknown lines are ignored) and emits either the current
/// (UDP/DTLS/SCTP + a=sctp-port) or the legacy (DTLS/SCTP &lt;port&gt; + a=sctpmap) form.
/// </summary>
public sealed class SessionDescription
{
    public const int DefaultSctpPort = 5000;
    /// <summary>RFC 8841 §6: a missing a=max-message-size means 64 KiB.</summary>
    public const int DefaultMaxMessageSize = 65536;

    public ulong SessionId { get; set; }
    public ulong SessionVersion { get; set; } = 2;
    public string Mid { get; set; } = "0";
    public string IceUfrag { get; set; } = "";
    public string IcePwd { get; set; } = "";
    public bool IceLite { get; set; }
    public bool IceOptionTrickle { get; set; }
    /// <summary>Hash function name as written (e.g. "sha-256").</summary>
    public string FingerprintAlgorithm { get; set; } = "sha-256";
    public byte[] Fingerprint { get; set; } = Array.Empty<byte>();
    public SdpSetup Setup { get; set; } = SdpSetup.ActPass;
    public int SctpPort { get; set; } = DefaultSctpPort;
    /// <summary>Value of a=max-message-size; null when absent (then <see cref="DefaultMaxMessageSize"/> applies).</summary>
    public int? MaxMessageSize { get; set; }
    /// <summary>True for the pre-RFC 8841 form aiortc still offers: "DTLS/SCTP 5000" with a=sctpmap.</summary>
    public bool LegacySctpMap { get; set; }
    public List<SdpCandidate> Candidates { get; } = new();
    public bool EndOfCandidates { get; set; }
    public string? TlsId { get; set; }

    /// <summary>Largest message the side that wrote this SDP accepts (0 means no limit, RFC 8841 §6.1).</summary>
    public int EffectiveMaxMessageSize => MaxMessageSize switch
    {
        null => DefaultMaxMessageSize,
        0 => int.MaxValue,
        var v => v.Value,
    };

    public static SessionDescription Parse(string sdp)
    {
        ArgumentNullException.ThrowIfNull(sdp);
        var parser = new Parser();
        foreach (var rawLine in sdp.Split('\n')) parser.ReadLine(rawLine.TrimEnd('\r', ' '));
        return parser.Finish();
    }

    /// <summary>
    /// Reads an SDP line by line. Attributes before the first m= line are session-level and are the fallback
    /// for ICE credentials, fingerprint and setup; media sections other than the first m=application are skipped.
    /// </summary>
    private sealed class Parser
    {
        private readonly SessionDescription _result = new();
        private bool _sawApplication;
        private bool _inOtherMedia;
        private string? _sessionFingerprint, _sessionUfrag, _sessionPwd, _mediaFingerprint;
        private SdpSetup? _sessionSetup, _mediaSetup;

        public void ReadLine(string line)
        {
            if (line.Length < 2 || line[1] != '=') return;
            var value = line[2..];
            switch (line[0])
            {
                case 'o': ReadOrigin(value); break;
                case 'm': ReadMedia(value); break;
                case 'a' when !_inOtherMedia: ReadAttribute(value); break;
            }
        }

        private void ReadOrigin(string value)
        {
            var parts = value.Split(' ');
            if (parts.Length < 3) return;
            // Chromium's session ids exceed long range; keep what fits, it is informational only.
            _ = ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var id);
            _result.SessionId = id;
            _ = ulong.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var version);
            _result.SessionVersion = version;
        }

        private void ReadMedia(string value)
        {
            if (_sawApplication) { _inOtherMedia = true; return; }
            var parts = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 4 || parts[0] != "application")
            {
                _inOtherMedia = true;
                return;
            }
            if (parts[2].Equals("UDP/DTLS/SCTP", StringComparison.OrdinalIgnoreCase)
                || parts[2].Equals("TCP/DTLS/SCTP", StringComparison.OrdinalIgnoreCase))
            {
                if (parts[3] != "webrtc-datachannel") throw new SdpException("m=application format is not webrtc-datachannel");
            }
            else if (parts[2].Equals("DTLS/SCTP", StringComparison.OrdinalIgnoreCase))
            {
                _result.LegacySctpMap = true;
                if (int.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var legacyPort)) _result.SctpPort = legacyPort;
            }
            else throw new SdpException($"unsupported m=application protocol '{parts[2]}'");
            _sawApplication = true;
            _inOtherMedia = false;
        }

        private void ReadAttribute(string value)
        {
            var colon = value.IndexOf(':', StringComparison.Ordinal);
            var name = colon < 0 ? value : value[..colon];
            var attribute = colon < 0 ? "" : value[(colon + 1)..].Trim();
            switch (name)
            {
                case "ice-ufrag": if (_sawApplication) _result.IceUfrag = attribute; else _sessionUfrag = attribute; break;
                case "ice-pwd": if (_sawApplication) _result.IcePwd = attribute; else _sessionPwd = attribute; break;
                case "ice-lite": _result.IceLite = true; break;
                case "ice-options":
                    if (attribute.Split(' ', ',').Contains("trickle")) _result.IceOptionTrickle = true;
                    break;
                case "fingerprint": ReadFingerprintAttribute(attribute); break;
                case "setup":
                    var setup = ParseSetup(attribute);
                    if (_sawApplication) _mediaSetup = setup; else _sessionSetup = setup;
                    break;
                case "mid": if (_sawApplication) _result.Mid = attribute; break;
                case "sctp-port":
                    if (int.TryParse(attribute, NumberStyles.None, CultureInfo.InvariantCulture, out var sctpPort)) _result.SctpPort = sctpPort;
                    break;
                case "sctpmap": ReadSctpMap(attribute); break;
                case "max-message-size": ReadMaxMessageSize(attribute); break;
                case "candidate":
                    if (_sawApplication && SdpCandidate.TryParse(value, out var candidate)) _result.Candidates.Add(candidate!);
                    break;
                case "end-of-candidates": _result.EndOfCandidates = true; break;
                case "tls-id": _result.TlsId = attribute; break;
            }
        }

        /// <summary>The first fingerprint of its level wins, unless a later one is sha-256 (the hash every peer supports).</summary>
        private void ReadFingerprintAttribute(string attribute)
        {
            if (!attribute.StartsWith("sha-256 ", StringComparison.OrdinalIgnoreCase) && (_sawApplication ? _mediaFingerprint : _sessionFingerprint) is not null) return;
            if (_sawApplication) _mediaFingerprint = attribute; else _sessionFingerprint = attribute;
        }

        private void ReadSctpMap(string attribute)
        {
            var parts = attribute.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 1 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var mapPort))
            {
                _result.SctpPort = mapPort;
                _result.LegacySctpMap = true;
            }
        }

        /// <summary>A value beyond int range means "larger than anything we send": clamp it.</summary>
        private void ReadMaxMessageSize(string attribute)
        {
            if (int.TryParse(attribute, NumberStyles.None, CultureInfo.InvariantCulture, out var maxMessage)) _result.MaxMessageSize = maxMessage;
            else if (long.TryParse(attribute, NumberStyles.None, CultureInfo.InvariantCulture, out _)) _result.MaxMessageSize = int.MaxValue;
        }

        /// <summary>Applies the session-level fallbacks and checks what a data-channel session cannot do without.</summary>
        public SessionDescription Finish()
        {
            if (!_sawApplication) throw new SdpException("no m=application section for data channels");
            if (_result.IceUfrag.Length == 0) _result.IceUfrag = _sessionUfrag ?? "";
            if (_result.IcePwd.Length == 0) _result.IcePwd = _sessionPwd ?? "";
            if (_result.IceUfrag.Length == 0 || _result.IcePwd.Length == 0) throw new SdpException("missing a=ice-ufrag or a=ice-pwd");
            var fingerprint = _mediaFingerprint ?? _sessionFingerprint ?? throw new SdpException("missing a=fingerprint");
            ParseFingerprint(fingerprint, _result);
            _result.Setup = _mediaSetup ?? _sessionSetup ?? SdpSetup.ActPass;
            return _result;
        }
    }

    private static SdpSetup ParseSetup(string value) => value.ToLowerInvariant() switch
    {
        "actpass" => SdpSetup.ActPass,
        "active" => SdpSetup.Active,
        "passive" => SdpSetup.Passive,
        "holdconn" => SdpSetup.HoldConn,
        _ => throw new SdpException($"unknown a=setup value '{value}'"),
    };

    private static void ParseFingerprint(string value, SessionDescription result)
    {
        var space = value.IndexOf(' ', StringComparison.Ordinal);
        if (space <= 0) throw new SdpException("malformed a=fingerprint");
        result.FingerprintAlgorithm = value[..space].ToLowerInvariant();
        var hex = value[(space + 1)..].Trim().Split(':');
        var bytes = new byte[hex.Length];
        for (var i = 0; i < hex.Length; i++)
        {
            if (hex[i].Length != 2 || !byte.TryParse(hex[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out bytes[i]))
                throw new SdpException("malformed a=fingerprint hex");
        }
        result.Fingerprint = bytes;
    }

    public static string FormatFingerprint(ReadOnlySpan<byte> fingerprint)
    {
        var builder = new StringBuilder(fingerprint.Length * 3);
        for (var i = 0; i < fingerprint.Length; i++)
        {
            if (i > 0) builder.Append(':');
            builder.Append(fingerprint[i].ToString("X2", CultureInfo.InvariantCulture));
        }
        return builder.ToString();
    }

    /// <summary>Emits the SDP with CRLF line ends; the first candidate becomes the default address (non-trickle).</summary>
    public string ToSdp()
    {
        var sb = new StringBuilder(1024);
        void Line(string text) => sb.Append(text).Append("\r\n");
        var defaultCandidate = Candidates.FirstOrDefault(c => c.Component == 1);
        var port = defaultCandidate?.Port ?? 9;
        var address = defaultCandidate?.Address ?? "0.0.0.0";
        var addressType = address.Contains(':', StringComparison.Ordinal) ? "IP6" : "IP4";
        Line("v=0");
        Line(FormattableString.Invariant($"o=- {SessionId} {SessionVersion} IN IP4 127.0.0.1"));
        Line("s=-");
        Line("t=0 0");
        Line($"a=group:BUNDLE {Mid}");
        if (IceLite) Line("a=ice-lite");
        Line("a=msid-semantic: WMS");
        Line(LegacySctpMap
            ? FormattableString.Invariant($"m=application {port} DTLS/SCTP {SctpPort}")
            : FormattableString.Invariant($"m=application {port} UDP/DTLS/SCTP webrtc-datachannel"));
        Line($"c=IN {addressType} {address}");
        foreach (var candidate in Candidates) Line("a=" + candidate);
        if (EndOfCandidates) Line("a=end-of-candidates");
        Line($"a=ice-ufrag:{IceUfrag}");
        Line($"a=ice-pwd:{IcePwd}");
        if (IceOptionTrickle) Line("a=ice-options:trickle");
        Line($"a=fingerprint:{FingerprintAlgorithm} {FormatFingerprint(Fingerprint)}");
        Line("a=setup:" + Setup.ToString().ToLowerInvariant());
        Line($"a=mid:{Mid}");
        if (LegacySctpMap) Line(FormattableString.Invariant($"a=sctpmap:{SctpPort} webrtc-datachannel 65535"));
        else Line(FormattableString.Invariant($"a=sctp-port:{SctpPort}"));
        if (MaxMessageSize is { } max) Line(FormattableString.Invariant($"a=max-message-size:{max}"));
        return sb.ToString();
    }
}
