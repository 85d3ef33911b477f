using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace SleapRtc.WebRtc.Stun;

/// <summary>
/// Writes a STUN message attribute by attribute. MESSAGE-INTEGRITY and FINGERPRINT must come last, in
/// that order (RFC 8489 §14.5, §14.7); the builder enforces it.
/// </summary>
public sealed class StunMessageBuilder
{
    private readonly byte[] _buffer;
    private int _length;
    private bool _sealedByIntegrity;
    private bool _sealedByFingerprint;

    public StunMessageBuilder(ushort method, StunClass cls, ReadOnlySpan<byte> transactionId)
        : this(method, cls, transactionId, 1280)
    {
    }

    /// <param name="capacity">Largest message in bytes (a TURN Send indication carries a whole datagram).</param>
    public StunMessageBuilder(ushort method, StunClass cls, ReadOnlySpan<byte> transactionId, int capacity)
    {
        _buffer = new byte[capacity];
        if (transactionId.Length != 12) throw new ArgumentException("a transaction id is 12 bytes", nameof(transactionId));
        var c = (int)cls;
        var type = (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7);
        BinaryPrimitives.WriteUInt16BigEndian(_buffer, (ushort)type);
        BinaryPrimitives.WriteUInt32BigEndian(_buffer.AsSpan(4), StunMessage.MagicCookie);
        transactionId.CopyTo(_buffer.AsSpan(8));
        TransactionId = transactionId.ToArray();
        _length = StunMessage.HeaderLength;
    }

    public byte[] TransactionId { get; }

    public static byte[] NewTransactionId() => RandomNumberGenerator.GetBytes(12);

    private Span<byte> AddAttribute(ushort type, int valueLength)
    {
        if (_sealedByFingerprint || (_sealedByIntegrity && type != StunAttributeType.Fingerprint))
            throw new InvalidOperationException("no attribute may follow MESSAGE-INTEGRITY except FINGERPRINT");
        var padded = (valueLength + 3) & ~3;
        if (_length + 4 + padded > _buffer.Length) throw new InvalidOperationException("STUN message too large");
        BinaryPrimitives.WriteUInt16BigEndian(_buffer.AsSpan(_length), type);
        BinaryPrimitives.WriteUInt16BigEndian(_buffer.AsSpan(_length + 2), (ushort)valueLength);
        var value = _buffer.AsSpan(_length + 4, padded);
        value.Clear();
        _length += 4 + padded;
        SetLengthField();
        return value[..valueLength];
    }

    private void SetLengthField() =>
        BinaryPrimitives.WriteUInt16BigEndian(_buffer.AsSpan(2), (ushort)(_length - StunMessage.HeaderLength));

    public StunMessageBuilder AddUsername(string username)
    {
        var bytes = Encoding.UTF8.GetBytes(username);
        bytes.CopyTo(AddAttribute(StunAttributeType.Username, bytes.Length));
        return this;
    }

    public StunMessageBuilder AddSoftware(string software)
    {
        var bytes = Encoding.UTF8.GetBytes(software);
        bytes.CopyTo(AddAttribute(StunAttributeType.Software, bytes.Length));
        return this;
    }

    public StunMessageBuilder AddPriority(uint priority)
    {
        BinaryPrimitives.WriteUInt32BigEndian(AddAttribute(StunAttributeType.Priority, 4), priority);
        return this;
    }

    public StunMessageBuilder AddUseCandidate()
    {
        AddAttribute(StunAttributeType.UseCandidate, 0);
        return this;
    }

    public StunMessageBuilder AddIceControlling(ulong tieBreaker)
    {
        BinaryPrimitives.WriteUInt64BigEndian(AddAttribute(StunAttributeType.IceControlling, 8), tieBreaker);
        return this;
    }

    public StunMessageBuilder AddIceControlled(ulong tieBreaker)
    {
        BinaryPrimitives.WriteUInt64BigEndian(AddAttribute(StunAttributeType.IceControlled, 8), tieBreaker);
        return this;
    }

    public StunMessageBuilder AddErrorCode(int code, string reason)
    {
        var reasonBytes = Encoding.UTF8.GetBytes(reason);
        var value = AddAttribute(StunAttributeType.ErrorCode, 4 + reasonBytes.Length);
        value[2] = (byte)(code / 100);
        value[3] = (byte)(code % 100);
        reasonBytes.CopyTo(value[4..]);
        return this;
    }

    public StunMessageBuilder AddUnknownAttributes(IReadOnlyList<ushort> types)
    {
        var value = AddAttribute(StunAttributeType.UnknownAttributes, types.Count * 2);
        for (var i = 0; i < types.Count; i++) BinaryPrimitives.WriteUInt16BigEndian(value[(i * 2)..], types[i]);
        return this;
    }

    public StunMessageBuilder AddXorMappedAddress(IPEndPoint endPoint) => AddXorAddress(StunAttributeType.XorMappedAddress, endPoint);

    public StunMessageBuilder AddXorPeerAddress(IPEndPoint endPoint) => AddXorAddress(StunAttributeType.XorPeerAddress, endPoint);

    public StunMessageBuilder AddXorRelayedAddress(IPEndPoint endPoint) => AddXorAddress(StunAttributeType.XorRelayedAddress, endPoint);

    public StunMessageBuilder AddRealm(string realm) => AddText(StunAttributeType.Realm, realm);

    public StunMessageBuilder AddNonce(string nonce) => AddText(StunAttributeType.Nonce, nonce);

    public StunMessageBuilder AddLifetime(uint seconds)
    {
        BinaryPrimitives.WriteUInt32BigEndian(AddAttribute(StunAttributeType.Lifetime, 4), seconds);
        return this;
    }

    /// <summary>REQUESTED-TRANSPORT (RFC 8656 §18.7): the relay's protocol number; 17 is UDP, the only one ICE relays.</summary>
    public StunMessageBuilder AddRequestedTransport(byte protocol)
    {
        AddAttribute(StunAttributeType.RequestedTransport, 4)[0] = protocol;
        return this;
    }

    public StunMessageBuilder AddChannelNumber(ushort channel)
    {
        BinaryPrimitives.WriteUInt16BigEndian(AddAttribute(StunAttributeType.ChannelNumber, 4), channel);
        return this;
    }

    public StunMessageBuilder AddData(ReadOnlySpan<byte> data)
    {
        data.CopyTo(AddAttribute(StunAttributeType.Data, data.Length));
        return this;
    }

    private StunMessageBuilder AddText(ushort type, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        bytes.CopyTo(AddAttribute(type, bytes.Length));
        return this;
    }

    private StunMessageBuilder AddXorAddress(ushort type, IPEndPoint endPoint)
    {
        var addressBytes = endPoint.Address.GetAddressBytes();
        var value = AddAttribute(type, 4 + addressBytes.Length);
        value[1] = endPoint.AddressFamily == AddressFamily.InterNetwork ? (byte)1 : (byte)2;
        BinaryPrimitives.WriteUInt16BigEndian(value[2..], (ushort)(endPoint.Port ^ (int)(StunMessage.MagicCookie >> 16)));
        Span<byte> mask = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(mask, StunMessage.MagicCookie);
        TransactionId.CopyTo(mask[4..]);
        for (var i = 0; i < addressBytes.Length; i++) value[4 + i] = (byte)(addressBytes[i] ^ mask[i]);
        return this;
    }

    public StunMessageBuilder AddMessageIntegrity(ReadOnlySpan<byte> key)
    {
        var prefixLength = _length;
        var value = AddAttribute(StunAttributeType.MessageIntegrity, 20);
        StunMessage.ComputeIntegrity(_buffer.AsSpan(0, prefixLength), key, value);
        _sealedByIntegrity = true;
        return this;
    }

    public StunMessageBuilder AddFingerprint()
    {
        var prefixLength = _length;
        var value = AddAttribute(StunAttributeType.Fingerprint, 4);
        BinaryPrimitives.WriteUInt32BigEndian(value, StunMessage.FingerprintOf(_buffer.AsSpan(0, prefixLength), _length - StunMessage.HeaderLength));
        _sealedByFingerprint = true;
        return this;
    }

    public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, _length);

    public byte[] ToArray() => _buffer.AsSpan(0, _length).ToArray();
}
