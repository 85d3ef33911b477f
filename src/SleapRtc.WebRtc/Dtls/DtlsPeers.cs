using System.Collections;
using SHA256 = System.Security.Cryptography.SHA256;
using CryptographicOperations = System.Security.Cryptography.CryptographicOperations;
using Org.BouncyCastle.Tls;
using Org.BouncyCastle.Tls.Crypto;
using Org.BouncyCastle.Tls.Crypto.Impl.BC;

namespace SleapRtc.WebRtc.Dtls;

/// <summary>Shared settings of both DTLS roles (WebRTC profile, RFC 8827 §6.5).</summary>
internal static class DtlsProfile
{
    public static readonly int[] CipherSuites =
    {
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    };

    /// <summary>Offered for werift, which refuses to continue without use_srtp even with no media.</summary>
    public static readonly int[] SrtpProfiles =
    {
        SrtpProtectionProfile.SRTP_AEAD_AES_128_GCM,
        SrtpProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80,
    };

    public static readonly SignatureAndHashAlgorithm EcdsaSha256 = new(HashAlgorithm.sha256, SignatureAlgorithm.ecdsa);

    /// <summary>SHA-256 of the end-entity certificate the peer presented; null when it presented none.</summary>
    public static byte[]? FingerprintOf(Certificate? certificate) =>
        certificate is null || certificate.IsEmpty ? null : SHA256.HashData(certificate.GetCertificateAt(0).GetEncoded());

    public static bool FingerprintMatches(byte[]? actual, byte[] expected) =>
        actual is not null && CryptographicOperations.FixedTimeEquals(actual, expected);

    public static TlsCredentialedSigner Signer(TlsContext context, BcTlsCrypto crypto, DtlsCertificate certificate) =>
        new BcDefaultTlsCredentialedSigner(new TlsCryptoParameters(context), crypto, certificate.PrivateKey,
            certificate.ToBouncyCastle(crypto), EcdsaSha256);
}

internal sealed class WebRtcDtlsClient(BcTlsCrypto crypto, DtlsCertificate certificate, byte[] remoteFingerprint, int handshakeTimeoutMs)
    : DefaultTlsClient(crypto)
{
    private readonly BcTlsCrypto _crypto = crypto;
    private readonly DtlsCertificate _certificate = certificate;
    private readonly byte[] _remoteFingerprint = remoteFingerprint;

    public bool FingerprintMismatch { get; private set; }

    /// <summary>SHA-256 of the certificate the peer presented in this handshake (what the channel binding proves).</summary>
    public byte[]? PeerFingerprint { get; private set; }

    /// <summary>Set when the peer sent close_notify or a fatal alert; the receive loop then stops.</summary>
    public volatile bool PeerClosed;

    public int NegotiatedCipherSuite => m_context.SecurityParameters.CipherSuite;

    public override void NotifyAlertReceived(short alertLevel, short alertDescription)
    {
        if (alertDescription == AlertDescription.close_notify || alertLevel == AlertLevel.fatal) PeerClosed = true;
    }

    protected override ProtocolVersion[] GetSupportedVersions() => ProtocolVersion.DTLSv12.Only();

    protected override int[] GetSupportedCipherSuites() => DtlsProfile.CipherSuites;

    public override int GetHandshakeTimeoutMillis() => handshakeTimeoutMs;

    public override bool IgnoreCorruptDtlsRecords => true;

    public override IDictionary<int, byte[]> GetClientExtensions()
    {
        var extensions = TlsExtensionsUtilities.EnsureExtensionsInitialised(base.GetClientExtensions());
        TlsSrtpUtilities.AddUseSrtpExtension(extensions, new UseSrtpData(DtlsProfile.SrtpProfiles, TlsUtilities.EmptyBytes));
        return extensions;
    }

    public override void ProcessServerExtensions(IDictionary<int, byte[]> serverExtensions)
    {
        // The server's use_srtp choice is accepted as is: no media flows, only werift insists on it.
        serverExtensions?.Remove(ExtensionType.use_srtp);
        base.ProcessServerExtensions(serverExtensions);
    }

    public override TlsAuthentication GetAuthentication() => new Authentication(this);

    private sealed class Authentication(WebRtcDtlsClient owner) : TlsAuthentication
    {
        public void NotifyServerCertificate(TlsServerCertificate serverCertificate)
        {
            owner.PeerFingerprint = DtlsProfile.FingerprintOf(serverCertificate.Certificate);
            if (!DtlsProfile.FingerprintMatches(owner.PeerFingerprint, owner._remoteFingerprint))
            {
                owner.FingerprintMismatch = true;
                throw new TlsFatalAlert(AlertDescription.bad_certificate);
            }
        }

        public TlsCredentials GetClientCredentials(CertificateRequest certificateRequest) =>
            DtlsProfile.Signer(owner.m_context, owner._crypto, owner._certificate);
    }
}

internal sealed class WebRtcDtlsServer(BcTlsCrypto crypto, DtlsCertificate certificate, byte[] remoteFingerprint, int handshakeTimeoutMs)
    : DefaultTlsServer(crypto)
{
    private UseSrtpData? _clientSrtp;

    public bool FingerprintMismatch { get; private set; }

    /// <summary>SHA-256 of the certificate the peer presented in this handshake (what the channel binding proves).</summary>
    public byte[]? PeerFingerprint { get; private set; }

    /// <summary>Set when the peer sent close_notify or a fatal alert; the receive loop then stops.</summary>
    public volatile bool PeerClosed;

    public int NegotiatedCipherSuite => m_context.SecurityParameters.CipherSuite;

    public override void NotifyAlertReceived(short alertLevel, short alertDescription)
    {
        if (alertDescription == AlertDescription.close_notify || alertLevel == AlertLevel.fatal) PeerClosed = true;
    }

    protected override ProtocolVersion[] GetSupportedVersions() => ProtocolVersion.DTLSv12.Only();

    protected override int[] GetSupportedCipherSuites() => DtlsProfile.CipherSuites;

    public override int GetHandshakeTimeoutMillis() => handshakeTimeoutMs;

    public override bool IgnoreCorruptDtlsRecords => true;

    protected override TlsCredentialedSigner GetECDsaSignerCredentials() => DtlsProfile.Signer(m_context, crypto, certificate);

    public override void ProcessClientExtensions(IDictionary<int, byte[]> clientExtensions)
    {
        base.ProcessClientExtensions(clientExtensions);
        _clientSrtp = clientExtensions is null ? null : TlsSrtpUtilities.GetUseSrtpExtension(clientExtensions);
    }

    public override IDictionary<int, byte[]> GetServerExtensions()
    {
        var extensions = TlsExtensionsUtilities.EnsureExtensionsInitialised(base.GetServerExtensions());
        if (_clientSrtp is not null)
        {
            var chosen = _clientSrtp.ProtectionProfiles.FirstOrDefault(p => DtlsProfile.SrtpProfiles.Contains(p), -1);
            if (chosen >= 0)
                TlsSrtpUtilities.AddUseSrtpExtension(extensions, new UseSrtpData(new[] { chosen }, TlsUtilities.EmptyBytes));
        }
        return extensions;
    }

    public override CertificateRequest GetCertificateRequest()
    {
        // Mutual authentication is mandatory in WebRTC: the client's certificate is checked against its SDP.
        var algorithms = new List<SignatureAndHashAlgorithm>
        {
            DtlsProfile.EcdsaSha256,
            new(HashAlgorithm.sha384, SignatureAlgorithm.ecdsa),
            new(HashAlgorithm.sha256, SignatureAlgorithm.rsa),
            SignatureAndHashAlgorithm.rsa_pss_rsae_sha256,
        };
        return new CertificateRequest(new[] { ClientCertificateType.ecdsa_sign, ClientCertificateType.rsa_sign }, algorithms, null);
    }

    public override void NotifyClientCertificate(Certificate clientCertificate)
    {
        PeerFingerprint = DtlsProfile.FingerprintOf(clientCertificate);
        if (!DtlsProfile.FingerprintMatches(PeerFingerprint, remoteFingerprint))
        {
            FingerprintMismatch = true;
            throw new TlsFatalAlert(AlertDescription.bad_certificate);
        }
    }
}
