using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Modes;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Tls;
using SleapRtc.WebRtc.Dtls;
using Xunit;

namespace SleapRtc.WebRtc.Tests.Dtls;

/// <summary>The .NET GCM record cipher must produce exactly what BouncyCastle's GCM produces, and fail the same way.</summary>
public class AesGcmRecordCipherTests
{
    private static readonly byte[] Key = Enumerable.Range(1, 16).Select(i => (byte)i).ToArray();
    private static readonly byte[] Nonce = Enumerable.Range(100, 12).Select(i => (byte)i).ToArray();
    private static readonly byte[] AdditionalData = Enumerable.Range(200, 13).Select(i => (byte)i).ToArray();

    private static byte[] BouncyCastleGcm(bool encrypt, byte[] input)
    {
        var gcm = new GcmBlockCipher(new AesEngine());
        gcm.Init(encrypt, new AeadParameters(new KeyParameter(Key), 128, Nonce, AdditionalData));
        var output = new byte[gcm.GetOutputSize(input.Length)];
        int written = gcm.ProcessBytes(input, 0, input.Length, output, 0);
        written += gcm.DoFinal(output, written);
        return output[..written];
    }

    private static AesGcmRecordCipher Cipher(bool encrypting)
    {
        var cipher = new AesGcmRecordCipher(encrypting);
        cipher.SetKey(Key, 0, Key.Length);
        cipher.Init(Nonce, 16, AdditionalData);
        return cipher;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1163)]
    public void Encrypts_like_BouncyCastle_and_decrypts_BouncyCastle_records(int length)
    {
        var plaintext = new byte[length];
        new Random(length).NextBytes(plaintext);

        var encryptor = Cipher(encrypting: true);
        var ours = new byte[5 + encryptor.GetOutputSize(length)];
        Assert.Equal(length + 16, encryptor.DoFinal(plaintext, 0, length, ours, 5));
        Assert.Equal(BouncyCastleGcm(true, plaintext), ours[5..]);

        var record = BouncyCastleGcm(true, plaintext);
        var decryptor = Cipher(encrypting: false);
        var decrypted = new byte[decryptor.GetOutputSize(record.Length)];
        Assert.Equal(length, decryptor.DoFinal(record, 0, record.Length, decrypted, 0));
        Assert.Equal(plaintext, decrypted);
    }

    [Fact]
    public void Decrypts_in_place_and_into_a_shifted_overlapping_range()
    {
        var plaintext = new byte[300];
        new Random(7).NextBytes(plaintext);
        var record = BouncyCastleGcm(true, plaintext);

        var buffer = new byte[8 + record.Length];
        record.CopyTo(buffer, 8);
        Assert.Equal(300, Cipher(encrypting: false).DoFinal(buffer, 8, record.Length, buffer, 8));
        Assert.Equal(plaintext, buffer[8..308]);

        record.CopyTo(buffer, 8);
        Assert.Equal(300, Cipher(encrypting: false).DoFinal(buffer, 8, record.Length, buffer, 0));
        Assert.Equal(plaintext, buffer[..300]);
    }

    [Fact]
    public void A_tampered_record_is_a_bad_record_mac_alert()
    {
        var record = BouncyCastleGcm(true, new byte[64]);
        record[10] ^= 1;
        var decryptor = Cipher(encrypting: false);
        var error = Assert.Throws<TlsFatalAlert>(() => decryptor.DoFinal(record, 0, record.Length, new byte[64], 0));
        Assert.Equal(AlertDescription.bad_record_mac, error.AlertDescription);
        Assert.Throws<TlsFatalAlert>(() => decryptor.DoFinal(new byte[10], 0, 10, new byte[10], 0)); // shorter than a tag
    }
}
