using System.Buffers;
using System.Security.Cryptography;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.Tls;
using Org.BouncyCastle.Tls.Crypto;
using Org.BouncyCastle.Tls.Crypto.Impl;
using Org.BouncyCastle.Tls.Crypto.Impl.BC;

namespace SleapRtc.WebRtc.Dtls;

/// <summary>
/// BouncyCastle for the DTLS protocol, with the AES-GCM of the record layer done by .NET (AES-NI through the
/// platform's crypto library). Every byte of a transfer passes through it twice, and BouncyCastle's managed GCM
/// costs several times more CPU per record; on a two-core box sender and receiver share, that CPU is throughput.
/// The netstandard2.0 build (Windows PowerShell 5.1) has no AesGcm and keeps BouncyCastle's GCM.
/// </summary>
internal sealed class WebRtcTlsCrypto(SecureRandom random) : BcTlsCrypto(random)
{
#if NET8_0_OR_GREATER
    protected override TlsAeadCipher CreateCipher_Aes_Gcm(TlsCryptoParameters cryptoParams, int cipherKeySize, int macSize)
    {
        if (!AesGcm.IsSupported || macSize != AesGcmRecordCipher.TagSize) return base.CreateCipher_Aes_Gcm(cryptoParams, cipherKeySize, macSize);
        return new TlsAeadCipher(cryptoParams, new AesGcmRecordCipher(encrypting: true), new AesGcmRecordCipher(encrypting: false),
            cipherKeySize, macSize, TlsAeadCipher.AEAD_GCM);
    }
#endif
}

#if NET8_0_OR_GREATER

/// <summary>One direction of a GCM record cipher: BouncyCastle supplies key, nonce and additional data per record.</summary>
internal sealed class AesGcmRecordCipher(bool encrypting) : TlsAeadCipherImpl
{
    /// <summary>Every TLS/DTLS GCM suite uses a 16-byte tag; others stay with BouncyCastle.</summary>
    public const int TagSize = 16;
    private AesGcm? _aes;
    private byte[] _nonce = Array.Empty<byte>();
    private byte[] _additionalData = Array.Empty<byte>();

    public void SetKey(byte[] key, int keyOff, int keyLen) => SetKey(key.AsSpan(keyOff, keyLen));

    public void SetKey(ReadOnlySpan<byte> key)
    {
        _aes?.Dispose();
        _aes = new AesGcm(key, TagSize);
    }

    public void Init(byte[] nonce, int macSize, byte[] additionalData)
    {
        if (macSize != TagSize) throw new TlsFatalAlert(AlertDescription.internal_error);
        _nonce = nonce;
        _additionalData = additionalData ?? Array.Empty<byte>();
    }

    public int GetOutputSize(int inputLength) => encrypting ? inputLength + TagSize : inputLength - TagSize;

    public int DoFinal(byte[] additionalData, byte[] input, int inputOffset, int inputLength, byte[] output, int outputOffset)
    {
        _additionalData = additionalData ?? Array.Empty<byte>();
        return DoFinal(input, inputOffset, inputLength, output, outputOffset);
    }

    public int DoFinal(byte[] input, int inputOffset, int inputLength, byte[] output, int outputOffset)
    {
        var aes = _aes ?? throw new InvalidOperationException("GCM key not set");
        int textLength = encrypting ? inputLength : inputLength - TagSize;
        if (textLength < 0) throw new TlsFatalAlert(AlertDescription.bad_record_mac);
        // AesGcm works in place only when input and output start together; BouncyCastle may shift the plaintext.
        bool overlapsShifted = ReferenceEquals(input, output) && inputOffset != outputOffset
            && inputOffset < outputOffset + inputLength + TagSize && outputOffset < inputOffset + inputLength;
        byte[]? scratch = overlapsShifted ? ArrayPool<byte>.Shared.Rent(inputLength) : null;
        try
        {
            ReadOnlySpan<byte> source = input.AsSpan(inputOffset, inputLength);
            if (scratch is not null)
            {
                source.CopyTo(scratch);
                source = scratch.AsSpan(0, inputLength);
            }
            if (encrypting)
            {
                aes.Encrypt(_nonce, source, output.AsSpan(outputOffset, textLength), output.AsSpan(outputOffset + textLength, TagSize), _additionalData);
                return textLength + TagSize;
            }
            try
            {
                aes.Decrypt(_nonce, source[..textLength], source.Slice(textLength, TagSize), output.AsSpan(outputOffset, textLength), _additionalData);
            }
            catch (CryptographicException)
            {
                throw new TlsFatalAlert(AlertDescription.bad_record_mac);
            }
            return textLength;
        }
        finally
        {
            if (scratch is not null) ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    public void Reset()
    {
    }
}
#endif
