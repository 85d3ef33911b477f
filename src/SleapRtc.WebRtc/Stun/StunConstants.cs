namespace SleapRtc.WebRtc.Stun;

/// <summary>Message class bits of the STUN type field (RFC 8489 §5).</summary>
public enum StunClass : byte { Request = 0, Indication = 1, SuccessResponse = 2, ErrorResponse = 3 }

public static class StunMethod
{
    public const ushort Binding = 0x0001;
    // TURN (RFC 8656 §17).
    public const ushort Allocate = 0x0003;
    public const ushort Refresh = 0x0004;
    public const ushort Send = 0x0006;
    public const ushort Data = 0x0007;
    public const ushort CreatePermission = 0x0008;
    public const ushort ChannelBind = 0x0009;
}

/// <summary>Attribute types used by ICE and TURN (RFC 8489 §18.3, RFC 8445 §16.1, RFC 8656 §18).</summary>
public static class StunAttributeType
{
    public const ushort MappedAddress = 0x0001;
    public const ushort Username = 0x0006;
    public const ushort MessageIntegrity = 0x0008;
    public const ushort ErrorCode = 0x0009;
    public const ushort UnknownAttributes = 0x000A;
    public const ushort ChannelNumber = 0x000C;
    public const ushort Lifetime = 0x000D;
    public const ushort XorPeerAddress = 0x0012;
    public const ushort Data = 0x0013;
    public const ushort Realm = 0x0014;
    public const ushort Nonce = 0x0015;
    public const ushort XorRelayedAddress = 0x0016;
    public const ushort RequestedTransport = 0x0019;
    public const ushort DontFragment = 0x001A;
    public const ushort XorMappedAddress = 0x0020;
    public const ushort Priority = 0x0024;
    public const ushort UseCandidate = 0x0025;
    public const ushort Software = 0x8022;
    public const ushort Fingerprint = 0x8028;
    public const ushort IceControlled = 0x8029;
    public const ushort IceControlling = 0x802A;
}

public static class StunErrorCode
{
    public const int BadRequest = 400;
    public const int Unauthorized = 401;
    public const int Forbidden = 403;
    public const int UnknownAttribute = 420;
    public const int AllocationMismatch = 437;
    public const int StaleNonce = 438;
    public const int WrongCredentials = 441;
    public const int UnsupportedTransportProtocol = 442;
    public const int AllocationQuotaReached = 486;
    public const int RoleConflict = 487;
    public const int InsufficientCapacity = 508;
}
