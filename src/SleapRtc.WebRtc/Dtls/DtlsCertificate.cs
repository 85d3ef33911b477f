using System.Security.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.Tls;
using Org.BouncyCastle.Tls.Crypto;

namespace SleapRtc.WebRtc.Dtls;

/// <summary>
/// A self-signed ECDSA P-256 certificate for DTLS, made with System.Security.Cryptography (fast, no BC
/// X.509 builder needed) and converted once for BouncyCastle. Its SHA-256 fingerprint goes into the SDP.
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
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=SleapRtc", key, HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        var privateKey = PrivateKeyFactory.CreateKey(key.ExportPkcs8PrivateKey());
        return new DtlsCertificate(certificate.RawData, privateKey);
    }

    internal Certificate ToBouncyCastle(TlsCrypto crypto) =>
        new(new TlsCertificate[] { crypto.CreateCertificate(Der) });
}

/// <summary>The peer's certificate does not match the a=fingerprint of its SDP.</summary>
public sealed class DtlsFingerprintMismatchException() : Exception("the remote DTLS certificate does not match the SDP fingerprint");
