/* confbot's pjproject configuration (copied to pjlib/include/pj/config_site.h by
 * scripts/build-pjsua2.sh; part of the wheel's configuration hash).
 * A conference server: many calls, one bridge, no sound card, no video. */
#define PJMEDIA_HAS_VIDEO                 0
#define PJMEDIA_AUDIO_DEV_HAS_NULL_AUDIO  1

#define PJSUA_MAX_CALLS                   512
#define PJSUA_MAX_CONF_PORTS              1100
#define PJSUA_MAX_PLAYERS                 512
#define PJSUA_MAX_RECORDERS               512
#define PJSUA_MAX_ACC                     16

/* epoll ioqueue: ~2 descriptors per call (RTP + RTCP) */
#define PJ_IOQUEUE_MAX_HANDLES            4096
#define PJSIP_MAX_TSX_COUNT               (16 * 1024 - 1)
#define PJSIP_MAX_DIALOG_COUNT            (16 * 1024 - 1)

/* quiet until pjsua_init applies the configured level (patch 0003) */
#define PJ_LOG_INITIAL_LEVEL              1
