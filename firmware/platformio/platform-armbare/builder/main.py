"""SCons builder of the armbare dev-platform: compile and link with arm-none-eabi-gcc for the board's
core (board.build.cpu/fpu/float_abi), the board's linker script (its flash/SRAM sizes, so a model that
does not fit fails at link time), and `upload` = run the ELF in QEMU (board.debug.qemu_machine) with
-icount shift=0 and the UART on a TCP socket (upload_port, default socket://127.0.0.1:4444)."""
import os

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment  # pylint: disable=import-error

env = DefaultEnvironment()
board = env.BoardConfig()

env.Replace(
    AR="arm-none-eabi-ar", AS="arm-none-eabi-as", CC="arm-none-eabi-gcc", CXX="arm-none-eabi-g++",
    OBJCOPY="arm-none-eabi-objcopy", RANLIB="arm-none-eabi-ranlib", SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"], PROGNAME="firmware", PROGSUFFIX=".elf",
    SIZEPROGREGEXP=r"^(?:\.text|\.data|\.rodata|\.ARM\.exidx|\.ARM\.extab)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.noinit|\.stack|\.heap)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
)

machine = ["-mthumb", "-mcpu=%s" % board.get("build.cpu")]
if board.get("build.fpu", ""):
    machine += ["-mfpu=%s" % board.get("build.fpu"), "-mfloat-abi=%s" % board.get("build.float_abi", "hard")]
else:
    machine += ["-mfloat-abi=soft"]

ldscript = env.subst(board.get("build.ldscript", ""))
if ldscript and not os.path.isabs(ldscript):
    ldscript = os.path.join(env.subst("$PROJECT_DIR"), ldscript)
env.Append(
    ASFLAGS=machine,
    CCFLAGS=machine + ["-ffunction-sections", "-fdata-sections"],
    LINKFLAGS=machine + ["-nostartfiles", "-specs=nano.specs", "-Wl,--gc-sections",
                         "-Wl,-Map=%s" % os.path.join(env.subst("$BUILD_DIR"), "firmware.map")],
    LIBS=["c", "gcc"],
)
if ldscript:
    env.Replace(LDSCRIPT_PATH=ldscript)
    env.Append(LIBPATH=[os.path.dirname(ldscript)])  # INCLUDEd section scripts sit beside it

target_elf = env.BuildProgram()
# the raw image a flasher writes at the part's flash origin (tinyengine flash)
target_bin = env.Command(os.path.join("$BUILD_DIR", "firmware.bin"), target_elf,
                         env.VerboseAction("$OBJCOPY -O binary $SOURCE $TARGET", "Building $TARGET"))
AlwaysBuild(env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")))

qemu_machine = board.get("debug.qemu_machine", "")
port = env.subst("$UPLOAD_PORT") or "socket://127.0.0.1:4444"
host_port = port.split("://", 1)[-1]
env.Replace(
    UPLOADER="qemu-system-arm",
    UPLOADCMD=("$UPLOADER -M %s -nographic -monitor none -semihosting-config enable=on,target=native "
               "-icount shift=0 -serial tcp:%s,server=on,wait=off,nodelay=on -kernel $SOURCE")
    % (qemu_machine, host_port),
)
if qemu_machine:
    AlwaysBuild(env.Alias("upload", target_elf, env.VerboseAction(
        "$UPLOADCMD", "Emulating on QEMU %s, serial port %s" % (qemu_machine, port))))
else:
    AlwaysBuild(env.Alias("upload", target_elf, env.VerboseAction(
        "echo 'board %s has no QEMU machine: nothing to upload to' && false" % board.id, "upload")))

Default([target_elf, target_bin])
