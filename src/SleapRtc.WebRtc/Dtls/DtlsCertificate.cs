using System.Security.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.Tls;
using Org.BouncyCastle.Tls.Crypto;

namespace SleapRtc.WebRtc.Dtls;

/// <summary>
/// A self-signed ECDSA P-256 certificate for DTLS, made with System.Security.Cryptography (fast, no BC
/// X.509 builder needed; BouncyCastle builds it on .NET Framework) and converted once for BouncyCastle. Its SHA-256 fingerprint goes into the SDP.
/// </summary>
public sealed class DtlsCertificate
{
    private DtlsCertificate(byte[] der, AsymmetricKeyParameter privateKey)
    {
        Der = der;
        PrivateKey = privateKey;
        Fingerprint = SHA256.HashData(der);
    }

    public byte[] Der { get; }
    /// <summary>SHA-256 over the DER certificate (RFC 8122 §5).</summary>
    public byte[] Fingerprint { get; }
    internal AsymmetricKeyParameter PrivateKey { get; }

    public static DtlsCertificate Generate()
    {
#if !NET8_0_OR_GREATER
        return GenerateWithBouncyCastle();
#else
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=SleapRtc", key, HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        var privateKey = PrivateKeyFactory.CreateKey(key.ExportPkcs8PrivateKey());
        return new DtlsCertificate(certificate.RawData, privateKey);
#endif
    }

#if !NET8_0_OR_GREATER
    /// <summary>The same certificate built by BouncyCastle: .NET Framework has no CertificateRequest.</summary>
    private static DtlsCertificate GenerateWithBouncyCastle()
    {
        var random = new SecureRandom();
        var generator = new Org.BouncyCastle.Crypto.Generators.ECKeyPairGenerator();
        generator.Init(new Org.BouncyCastle.Crypto.Parameters.ECKeyGenerationParameters(
            Org.BouncyCastle.Asn1.Sec.SecObjectIdentifiers.SecP256r1, random));
        var keys = generator.GenerateKeyPair();
        var name = new Org.BouncyCastle.Asn1.X509.X509Name("CN=SleapRtc");
        var builder = new Org.BouncyCastle.X509.X509V3CertificateGenerator();
        builder.SetSerialNumber(new Org.BouncyCastle.Math.BigInteger(64, random).Add(Org.BouncyCastle.Math.BigInteger.One));
        builder.SetIssuerDN(name);
        builder.SetSubjectDN(name);
        var now = DateTime.UtcNow;
        builder.SetNotBefore(now.AddDays(-1));
        builder.SetNotAfter(now.AddDays(30));
        builder.SetPublicKey(keys.Public);
        var certificate = builder.Generate(new Org.BouncyCastle.Crypto.Operators.Asn1SignatureFactory("SHA256WITHECDSA", keys.Private, random));
        return new DtlsCertificate(certificate.GetEncoded(), keys.Private);
    }
#endif

    internal Certificate ToBouncyCastle(TlsCrypto crypto) =>
        new(new TlsCertificate[] { crypto.CreateCertificate(Der) });
}

/// <summary>The peer's certificate does not match the a=fingerprint of its SDP.</summary>
public sealed class DtlsFingerprintMismatchException() : Exception("the remote DTLS certificate does not match the SDP fingerprint");
