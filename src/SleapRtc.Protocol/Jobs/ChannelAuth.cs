using System.Security.Cryptography;
using System.Text;

namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// Binds a data channel to the room token, so that whoever controls the signaling path (and can swap the DTLS
/// fingerprints in the SDP to sit in the middle with two DTLS sessions of its own) cannot take the channel over.
/// Before any job message, both ends prove over the channel itself that they hold the room token and see the same
/// pair of DTLS certificates:
/// <code>
/// key  = HKDF-SHA256(ikm: room token (UTF-8), salt: none, info: "sleap-rtc channel auth v1", 32 bytes)
/// mac(role) = HMAC-SHA256(key, Label ‖ 0 ‖ role ‖ 0 ‖ fp(client cert) ‖ fp(worker cert) ‖ client nonce ‖ worker nonce)
/// client → worker  SLEAPRTC_AUTH::&lt;client nonce&gt;
/// worker → client  SLEAPRTC_AUTH_RESPONSE::&lt;worker nonce&gt;::&lt;mac("worker")&gt;
/// client → worker  SLEAPRTC_AUTH_PROOF::&lt;mac("client")&gt;
/// worker → client  SLEAPRTC_AUTH_OK            (or, either way, SLEAPRTC_AUTH_FAILED::&lt;code&gt;::&lt;message&gt;)
/// </code>
/// Nonces are 32 random bytes, everything lowercase hex; fp is SHA-256 of the certificate's DER, each side computing
/// its own from its certificate and the peer's from the certificate the peer presented in the handshake (never from
/// the SDP). A relay in the middle holds two different certificate pairs, so the MACs differ and both ends stop.
/// Announced like the other extensions: workers advertise <see cref="JobExtensions.MetadataProperty"/> at
/// <see cref="JobExtensions.ChannelAuthVersion"/> or above. This class is the state machine only (messages in,
/// messages out); the client and the worker drive it over their channels.
/// </summary>
public sealed class ChannelAuthExchange
{
    /// <summary>HKDF info and the first field of every MAC: a key or MAC for anything else never verifies here.</summary>
    public const string Label = "sleap-rtc channel auth v1";
    public const string Begin = "SLEAPRTC_AUTH";
    public const string Response = "SLEAPRTC_AUTH_RESPONSE";
    public const string Proof = "SLEAPRTC_AUTH_PROOF";
    public const string Ok = "SLEAPRTC_AUTH_OK";
    public const string Failed = "SLEAPRTC_AUTH_FAILED";

    /// <summary>Failure codes carried by <see cref="Failed"/> (stable).</summary>
    public static class Codes
    {
        /// <summary>A MAC did not verify: another room token, or another pair of certificates (a relay in the middle).</summary>
        public const string ProofMismatch = "proof_mismatch";
        /// <summary>Our extensions without the proof first (a client that skipped it): the worker serves nothing.</summary>
        public const string Required = "channel_auth_required";
        /// <summary>A message that does not belong in the exchange at that point.</summary>
        public const string Protocol = "protocol_error";
    }

    private const int NonceLength = 32;
    private const int FingerprintLength = 32;
    private readonly ChannelAuthRole _role;
    private readonly byte[] _key;
    private readonly byte[] _clientFingerprint;
    private readonly byte[] _workerFingerprint;
    private byte[]? _clientNonce;
    private byte[]? _workerNonce;

    /// <param name="localFingerprint">SHA-256 of our own DTLS certificate.</param>
    /// <param name="remoteFingerprint">SHA-256 of the certificate the peer presented in the DTLS handshake.</param>
    public ChannelAuthExchange(ChannelAuthRole role, string roomToken, byte[] localFingerprint, byte[] remoteFingerprint)
    {
        if (string.IsNullOrEmpty(roomToken)) throw new ArgumentException("A room token is needed to authenticate a channel.", nameof(roomToken));
        if (localFingerprint.Length != FingerprintLength || remoteFingerprint.Length != FingerprintLength)
            throw new ArgumentException("Fingerprints are SHA-256 digests (32 bytes).");
        _role = role;
        _key = DeriveKey(roomToken);
        (_clientFingerprint, _workerFingerprint) = role == ChannelAuthRole.Client ? (localFingerprint, remoteFingerprint) : (remoteFingerprint, localFingerprint);
    }

    public ChannelAuthState State { get; private set; } = ChannelAuthState.InProgress;

    /// <summary>Why it failed (a code of <see cref="Codes"/>), once <see cref="State"/> is Failed.</summary>
    public string? FailureCode { get; private set; }

    /// <summary>Set when the peer reported the failure (its message), not this side.</summary>
    public string? PeerFailureMessage { get; private set; }

    /// <summary>The client's opening message.</summary>
    public string Start()
    {
        if (_role != ChannelAuthRole.Client || _clientNonce is not null) throw new InvalidOperationException("Only the client starts the exchange, once.");
        _clientNonce = RandomNumberGenerator.GetBytes(NonceLength);
        return Begin + JobMessages.Separator + Hex(_clientNonce);
    }

    /// <summary>True for any message of the exchange (the worker's gate tells the proof from a classic peer's first message).</summary>
    public static bool IsExchangeMessage(string text) => text.StartsWith(Begin, StringComparison.Ordinal);

    /// <summary>Takes the peer's next message; returns the reply to send (null for none). <see cref="State"/> says where it stands.</summary>
    public string? Receive(string message)
    {
        if (State != ChannelAuthState.InProgress) return null;
        var (type, args) = JobMessages.Parse(message);
        if (type == Failed)
        {
            FailureCode = args.ElementAtOrDefault(0) is { Length: > 0 and <= 64 } code ? code : Codes.Protocol;
            PeerFailureMessage = args.ElementAtOrDefault(1) is { } text ? Truncate(text) : "no detail";
            State = ChannelAuthState.Failed;
            return null;
        }
        return _role == ChannelAuthRole.Worker ? ReceiveAsWorker(type, args) : ReceiveAsClient(type, args);
    }

    private string? ReceiveAsWorker(string type, string[] args)
    {
        if (type == Begin && _clientNonce is null && ParseHex(args.ElementAtOrDefault(0), NonceLength) is { } clientNonce)
        {
            _clientNonce = clientNonce;
            _workerNonce = RandomNumberGenerator.GetBytes(NonceLength);
            return JobMessages.Format(Response, Hex(_workerNonce), Hex(Mac(ChannelAuthRole.Worker)));
        }
        if (type == Proof && _workerNonce is not null)
        {
            if (!Verifies(args.ElementAtOrDefault(0), ChannelAuthRole.Client)) return Fail(Codes.ProofMismatch, MismatchText);
            State = ChannelAuthState.Verified;
            return Ok;
        }
        return Fail(Codes.Protocol, $"unexpected {Truncate(type)} during channel authentication");
    }

    private string? ReceiveAsClient(string type, string[] args)
    {
        if (type == Response && _clientNonce is not null && _workerNonce is null && ParseHex(args.ElementAtOrDefault(0), NonceLength) is { } workerNonce)
        {
            _workerNonce = workerNonce;
            if (!Verifies(args.ElementAtOrDefault(1), ChannelAuthRole.Worker)) return Fail(Codes.ProofMismatch, MismatchText);
            return JobMessages.Format(Proof, Hex(Mac(ChannelAuthRole.Client)));
        }
        if (type == Ok && _workerNonce is not null)
        {
            State = ChannelAuthState.Verified;
            return null;
        }
        return Fail(Codes.Protocol, $"unexpected {Truncate(type)} during channel authentication");
    }

    private const string MismatchText = "the peer's proof does not match this room token and these DTLS certificates";

    /// <summary>The message either side sends to say it stops (also the worker's answer to a client that skipped the proof).</summary>
    public static string FailureMessage(string code, string message) =>
        JobMessages.Format(Failed, code, message.Replace(JobMessages.Separator, ": "));

    private string Fail(string code, string message)
    {
        State = ChannelAuthState.Failed;
        FailureCode = code;
        return FailureMessage(code, message);
    }

    private bool Verifies(string? hex, ChannelAuthRole role) =>
        ParseHex(hex, 32) is { } given && CryptographicOperations.FixedTimeEquals(given, Mac(role));

    private byte[] Mac(ChannelAuthRole role)
    {
        var label = Encoding.UTF8.GetBytes(Label);
        var roleName = Encoding.UTF8.GetBytes(RoleName(role));
        var input = new byte[label.Length + 1 + roleName.Length + 1 + 4 * 32];
        var at = 0;
        void Put(byte[] bytes) { Buffer.BlockCopy(bytes, 0, input, at, bytes.Length); at += bytes.Length; }
        Put(label);
        input[at++] = 0;
        Put(roleName);
        input[at++] = 0;
        Put(_clientFingerprint);
        Put(_workerFingerprint);
        Put(_clientNonce!);
        Put(_workerNonce!);
        return HMACSHA256.HashData(_key, input);
    }

    /// <summary>The role names inside the MAC (so one side's MAC never passes as the other's).</summary>
    public static string RoleName(ChannelAuthRole role) => role == ChannelAuthRole.Client ? "client" : "worker";

    /// <summary>HKDF-SHA256 (RFC 5869) of the token with an empty salt, one 32-byte block: extract, then expand with <see cref="Label"/>.</summary>
    internal static byte[] DeriveKey(string roomToken)
    {
        var pseudoRandomKey = HMACSHA256.HashData(new byte[32], Encoding.UTF8.GetBytes(roomToken));
        var info = Encoding.UTF8.GetBytes(Label);
        var block = new byte[info.Length + 1];
        Buffer.BlockCopy(info, 0, block, 0, info.Length);
        block[info.Length] = 1;
        return HMACSHA256.HashData(pseudoRandomKey, block);
    }

    private static string Hex(byte[] bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    private static byte[]? ParseHex(string? hex, int length)
    {
        if (hex is null || hex.Length != length * 2) return null;
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            var high = HexValue(hex[2 * i]);
            var low = HexValue(hex[2 * i + 1]);
            if (high < 0 || low < 0) return null;
            bytes[i] = (byte)(high << 4 | low);
        }
        return bytes;
    }

    private static int HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    private static string Truncate(string text) => text.Length <= 200 ? text : text.Substring(0, 200);
}

public enum ChannelAuthRole { Client, Worker }

public enum ChannelAuthState { InProgress, Verified, Failed }

/// <summary>How a job's channel was authenticated, as the job record says it (<c>channel_auth</c>).</summary>
public static class ChannelAuthStatus
{
    /// <summary>Both ends proved the room token over this channel's own certificates.</summary>
    public const string Verified = "verified";
    /// <summary>A classic peer (no extensions): it cannot prove anything, and the worker allowed it.</summary>
    public const string Unverified = "unverified";

    /// <summary>The public wording (JobInfo.ChannelAuth) of a record's value; null when the record does not say.</summary>
    public static string? Describe(string? status) => status switch
    {
        Verified => "Verified",
        Unverified => "Unverified (classic)",
        _ => null,
    };
}

/// <summary>
/// The channel to a worker could not be authenticated: it did not prove the room token over the certificates this
/// connection actually uses. Either someone relays the connection (the signaling path may be compromised), or the
/// worker holds another room token. Nothing of the job was sent.
/// </summary>
public sealed class ChannelAuthenticationException : SleapRtcException
{
    public ChannelAuthenticationException(string workerId, string detail)
        : base("ChannelAuthenticationFailed", SleapRtcErrorKind.AuthenticationError,
            $"The channel to worker {workerId} could not be authenticated ({detail}); the signaling path may be compromised " +
            "(someone may be relaying the connection). Nothing of the job was sent.",
            "Check that the worker and this machine use the same room token and reach the signaling server directly (no untrusted " +
            "proxy); Test-SleapConnection -WorkerId shows the path. If it persists, create a new room (New-SleapRoom) and restart the worker in it.")
    {
        WorkerId = workerId;
    }

    public string WorkerId { get; }
}
