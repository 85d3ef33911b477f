# Shared set-up for the Pester 5 files: import the BUILT module from the repo root and keep test state private.
$script:RepoRoot = Split-Path -Parent $PSScriptRoot
$env:SLEAP_RTC_DATA_DIR = Join-Path ([System.IO.Path]::GetTempPath()) "sleaprtc-pester-$PID"
$env:SLEAP_RTC_LOCAL_ADDRESSES = '127.0.0.1'
$env:SLEAP_NN_STANDIN_EPOCH_SECONDS = '0.02'
Import-Module (Join-Path $script:RepoRoot 'SleapRtc.psd1') -Force -ErrorAction Stop

# The recorded nvidia-smi (GPUs 0-2) and the stand-in trainer that workers in these files use.
$smi = Join-Path $script:RepoRoot 'tests/fixtures/nvidia-smi'
$nn = Join-Path $script:RepoRoot 'tests/fixtures/sleap-nn'

# What an end-to-end file starts from: a server on a free loopback port with an in-memory database, a room on it,
# and a working folder of its own. Returns the three ($server, $room, $work = Initialize-TestRoom name).
function Initialize-TestRoom([string] $Purpose) {
    $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
    $server, (New-SleapRoom -Server $server.Url), (Join-Path $env:SLEAP_RTC_DATA_DIR $Purpose)
}

# Stops every worker and server the file started, so no port stays bound after a failing test.
function Stop-TestRoom {
    Get-SleapWorker -Local | Stop-SleapWorker
    Get-SleapSignalingServer | Stop-SleapSignalingServer
}

function Complete([string] $Line) {
    [System.Management.Automation.CommandCompletion]::CompleteInput($Line, $Line.Length, $null).CompletionMatches
}

# A package shaped like SLEAP's export. -Failing: its train script names a config the package lacks, so the trainer
# exits non-zero on the worker (a training that fails there, as a typo in a config name does).
function New-TestPackage([string] $Directory, [string] $Name = 'labels.v001', [int] $Epochs = 2, [switch] $Failing) {
    Add-Type -AssemblyName System.IO.Compression.FileSystem
    $null = New-Item -ItemType Directory -Force -Path $Directory
    $zipPath = Join-Path $Directory "$Name.zip"
    $zip = [System.IO.Compression.ZipFile]::Open($zipPath, 'Create')
    try {
        $entries = @{
            "$Name/config.json"          = "{""trainer_config"": {""max_epochs"": $Epochs}}"
            "$Name/train-script.sh"      = "#!/bin/bash`nsleap-nn train --config-name $(if ($Failing) { 'missing.json' } else { 'config.json' }) --config-dir .`n"
            "$Name/labels.v001.pkg.slp"  = 'x' * 4096
        }
        foreach ($entry in $entries.GetEnumerator()) {
            $writer = [System.IO.StreamWriter]::new($zip.CreateEntry($entry.Key).Open())
            try { $writer.Write($entry.Value) } finally { $writer.Dispose() }
        }
    }
    finally { $zip.Dispose() }
    $zipPath
}

# Runs a script file the way a scheduled task or a service does: a new pwsh (the one running these tests, e.g.
# `dotnet pwsh`), -NonInteractive -NoProfile -File, standard input closed (as `</dev/null`), extra environment
# variables for the child only. Returns the exit code and what it printed.
function Invoke-PwshFile([string] $Path, [string[]] $Arguments = @(), [hashtable] $Environment = @{}, [int] $TimeoutSeconds = 120) {
    $self = [System.Diagnostics.Process]::GetCurrentProcess().MainModule.FileName
    $prefix = @()
    if ([System.IO.Path]::GetFileNameWithoutExtension($self) -eq 'dotnet') { $prefix = @(Join-Path $PSHOME 'pwsh.dll') }
    $all = $prefix + @('-NonInteractive', '-NoProfile', '-File', $Path) + $Arguments
    $start = [System.Diagnostics.ProcessStartInfo]::new($self, (($all | ForEach-Object { '"' + $_ + '"' }) -join ' '))
    $start.UseShellExecute = $false
    $start.RedirectStandardInput = $true
    $start.RedirectStandardOutput = $true
    $start.RedirectStandardError = $true
    foreach ($entry in $Environment.GetEnumerator()) { $start.EnvironmentVariables[$entry.Key] = [string]$entry.Value }
    $process = [System.Diagnostics.Process]::Start($start)
    try {
        $process.StandardInput.Close()
        $stdout = $process.StandardOutput.ReadToEndAsync()
        $stderr = $process.StandardError.ReadToEndAsync()
        if (-not $process.WaitForExit($TimeoutSeconds * 1000)) {
            $process.Kill()
            throw "$Path did not exit within $TimeoutSeconds s. Output: $($stdout.Result)"
        }
        [pscustomobject]@{ ExitCode = $process.ExitCode; Output = $stdout.Result; Errors = $stderr.Result }
    }
    finally { $process.Dispose() }
}

# Waits until no worker of the room is busy (a worker publishes 'available' once the client has closed the channel).
function Wait-RoomIdle($Room, [int] $TimeoutSeconds = 30) {
    $deadline = [datetime]::UtcNow.AddSeconds($TimeoutSeconds)
    while ((Get-SleapWorker -RoomId $Room.RoomId -Status *).Status -contains 'busy' -and [datetime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 200 }
}
