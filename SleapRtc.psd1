@{
    # The module is built into bin/ (and en-US/) by `dotnet build`; see README.md.
    RootModule           = 'bin/SleapRtc.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '5d1f3c2e-7a4b-4f0e-9c61-2b8e4a7d9f13'
    Author               = 'SleapRtc contributors'
    CompanyName          = 'SleapRtc'
    Copyright            = '(c) SleapRtc contributors. MIT License.'
    Description          = 'Train SLEAP pose-estimation models on remote GPU workers over WebRTC: a bundled signaling server, room-based worker discovery and peer-to-peer package transfer. Wire-compatible with sleap-RTC. Runs in PowerShell 7.4+ and Windows PowerShell 5.1.'

    # One netstandard2.0 cmdlet assembly for both editions: PowerShell 7.4+ loads the net8.0 builds of our libraries
    # (bin/deps), Windows PowerShell 5.1 the netstandard2.0 builds (bin/desktop), which need .NET Framework 4.7.2.
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    DotNetFrameworkVersion = '4.7.2'

    # Public object types load into the default context so [SleapRtc.WorkerInfo] and -is checks resolve.
    # Everything else (our libraries, BouncyCastle, SQLite) loads privately: a load context over bin/deps on
    # PowerShell 7, a resolver over bin/desktop on Windows PowerShell 5.1.
    RequiredAssemblies   = @('bin/SleapRtc.Model.dll')
    FormatsToProcess     = @('bin/SleapRtc.format.ps1xml')
    TypesToProcess       = @('bin/SleapRtc.types.ps1xml')

    CmdletsToExport      = @(
        'ConvertFrom-SleapSessionString'
        'ConvertTo-SleapSessionString'
        'Get-SleapJob'
        'Get-SleapSignalingServer'
        'Get-SleapSpace'
        'Get-SleapWorker'
        'New-SleapRoom'
        'Receive-SleapJob'
        'Remove-SleapRoom'
        'Select-SleapWorker'
        'Show-SleapMonitor'
        'Start-SleapSignalingServer'
        'Start-SleapWorker'
        'Stop-SleapJob'
        'Stop-SleapSignalingServer'
        'Stop-SleapWorker'
        'Submit-SleapInference'
        'Submit-SleapTraining'
        'Test-SleapConnection'
        'Wait-SleapJob'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()

    PrivateData          = @{
        PSData = @{
            Tags         = @('SLEAP', 'pose-estimation', 'WebRTC', 'GPU', 'training', 'PSEdition_Core', 'Linux', 'Windows', 'MacOS')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ProjectUri   = 'https://github.com/sleap-rtc/SleapRtc'
            ReleaseNotes = 'First release: signaling server, rooms, session strings, workers and training submission.'
        }
    }
}
