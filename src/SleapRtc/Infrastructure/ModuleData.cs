using SleapRtc.Client.Credentials;

namespace SleapRtc.PowerShell.Infrastructure;

/// <summary>Where the module keeps per-user data: saved room credentials and the default room database.</summary>
internal static class ModuleData
{
    public const string DataDirectoryVariable = "SLEAP_RTC_DATA_DIR";

    /// <summary>SLEAP_RTC_DATA_DIR when set (tests, portable setups), else the per-user application data folder.</summary>
    public static string DataDirectory()
    {
        var overridden = Environment.GetEnvironmentVariable(DataDirectoryVariable);
        return string.IsNullOrWhiteSpace(overridden) ? CredentialStore.DefaultDirectory : overridden.Trim();
    }

    public static CredentialStore Credentials() => new(DataDirectory());

    public static string DefaultDatabasePath() => Path.Combine(DataDirectory(), "rooms.db");
}
