"""The pjsua2 adapter: the SIP stack on its one owner thread (`stack`, `call`) and the events
and commands it exchanges with the service (`events`, pure). Only this package imports pjsua2."""
